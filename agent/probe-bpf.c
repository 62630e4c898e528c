/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The BPF source: loads the program sets of bpf/ and reads their maps.
 *
 * Per set: open -> set rodata -> keep only one attach kind (tp_btf, raw_tp, then classic
 * tracepoint) -> check that every hook exists (kernel BTF, or tracefs) -> load -> attach. A set
 * that fails is destroyed and tried with the next kind; one that fails with every kind is left out
 * with its reason, and the caller falls back for its metrics. Kernel differences are
 * found by these probes, never by version numbers. */
#include <stdarg.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "probe-internal.h"
#include "probe-maps.h"
#include "shared/log.h"

#include "biolat.skel.h"
#include "cpuacct.skel.h"
#include "runqlat.skel.h"
#include "tcpretrans.skel.h"

_Static_assert(PROBE_HIST_SLOTS == PROBE_HISTOGRAM_SLOTS, "histogram layouts differ");
_Static_assert(sizeof(struct probe_hist) == sizeof(ProbeHistogram), "histogram layouts differ");

static const char *const program_names[_PROBE_PROGRAM_MAX] = {
        [PROBE_PROGRAM_RUNQLAT] = "runqlat",
        [PROBE_PROGRAM_CPUACCT] = "cpuacct",
        [PROBE_PROGRAM_BIOLAT] = "biolat",
        [PROBE_PROGRAM_TCPRETRANS] = "tcpretrans",
};

const char *probe_program_to_string(ProbeProgram p)
{
        return p >= 0 && p < _PROBE_PROGRAM_MAX ? program_names[p] : NULL;
}

/* Cheapest first. tp_btf needs BPF_PROG_TYPE_TRACING (5.5); raw_tp works since 4.17;
 * classic tracepoints need tracefs. A map whose name ends in another kind's suffix is
 * not created (bpf/runqlat.bpf.c, bpf/biolat.bpf.c). */
static const char *const kinds[] = {"tp_btf", "raw_tp", "tracepoint"};
static const char *const kind_map_suffix[] = {"_btf", "_raw", "_tp"};
/* Classic tracepoints (biolat only): found through tracefs, which must be mounted. */
#define KIND_TRACEPOINT 2

typedef struct ProbeSet {
        void *skel;
        struct bpf_object *obj;
        int (*load)(void *skel);
        int (*attach)(void *skel);
        void (*destroy)(void *skel);
        const char *kind; /* attached with, or NULL */
        char *reason; /* why not attached */
} ProbeSet;

struct ProbeBpf {
        ProbeSet sets[_PROBE_PROGRAM_MAX];
        struct btf *vmlinux;
        bool track_cgroups;
        pid_t runq_tgid;
        int ncpus;
        struct probe_hist *percpu; /* ncpus histograms, the read buffer */
        struct ring_buffer *rb;
        uint64_t tcp_retransmits; /* counted by the ring buffer callback */
};

#define DEFINE_SET_OPS(name)                                                                       \
        static int name##_load_op(void *s)                                                         \
        {                                                                                          \
                return name##__load(s);                                                            \
        }                                                                                          \
        static int name##_attach_op(void *s)                                                       \
        {                                                                                          \
                return name##__attach(s);                                                          \
        }                                                                                          \
        static void name##_destroy_op(void *s)                                                     \
        {                                                                                          \
                name##__destroy(s);                                                                \
        }

DEFINE_SET_OPS(runqlat)
DEFINE_SET_OPS(cpuacct)
DEFINE_SET_OPS(biolat)
DEFINE_SET_OPS(tcpretrans)

#define SET_OPS(set, name, s)                                                                      \
        do {                                                                                       \
                (set)->skel = (s);                                                                 \
                (set)->obj = (s)->obj;                                                             \
                (set)->load = name##_load_op;                                                      \
                (set)->attach = name##_attach_op;                                                  \
                (set)->destroy = name##_destroy_op;                                                \
        } while (0)

/* Opens a set's skeleton and writes its rodata (before load, while it is writable). */
static int set_open(ProbeBpf *b, ProbeProgram p, ProbeSet *set)
{
        switch (p) {
        case PROBE_PROGRAM_RUNQLAT: {
                struct runqlat *s = runqlat__open();
                if (!s)
                        return negative_errno();
                s->rodata->targ_tgid = (__u32)b->runq_tgid;
                SET_OPS(set, runqlat, s);
                return 0;
        }
        case PROBE_PROGRAM_CPUACCT: {
                struct cpuacct *s = cpuacct__open();
                if (!s)
                        return negative_errno();
                s->rodata->track_cgroups = b->track_cgroups;
                SET_OPS(set, cpuacct, s);
                return 0;
        }
        case PROBE_PROGRAM_BIOLAT: {
                struct biolat *s = biolat__open();
                if (!s)
                        return negative_errno();
                SET_OPS(set, biolat, s);
                return 0;
        }
        case PROBE_PROGRAM_TCPRETRANS: {
                struct tcpretrans *s = tcpretrans__open();
                if (!s)
                        return negative_errno();
                SET_OPS(set, tcpretrans, s);
                return 0;
        }
        default:
                return -EINVAL;
        }
}

static void set_close(ProbeSet *set)
{
        if (set->skel)
                set->destroy(set->skel);
        set->skel = NULL;
        set->obj = NULL;
        set->kind = NULL;
}

static void set_reason(ProbeSet *set, const char *fmt, ...) _printf_(2, 3);
static void set_reason(ProbeSet *set, const char *fmt, ...)
{
        _cleanup_free_ char *s = NULL;
        va_list ap;
        char *joined;

        /* One reason per kind tried, joined: "tp_btf: ...; raw_tp: ..." */
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return; /* OOM: probe_bpf_reason() says "unknown" */
        joined = set->reason ? strprintf("%s; %s", set->reason, s) : TAKE_PTR(s);
        if (!joined)
                return;
        free(set->reason);
        set->reason = joined;
}

static bool is_disabled(char *const *disable, const char *set, const char *kind)
{
        STRV_FOREACH (d, disable) {
                const char *rest;

                if (streq(*d, set) || streq(*d, kind))
                        return true;
                rest = startswith(*d, set);
                if (rest && rest[0] == ':' && streq(rest + 1, kind))
                        return true;
        }
        return false;
}

/* Keeps the programs of one kind; fails with -ENOENT (naming the hook) when the kernel
 * lacks a tracepoint one of them needs. */
/* Where tracefs shows the tracepoints (libbpf looks in the same two places), or NULL. */
static const char *tracefs_events(void)
{
        static const char *const dirs[] = {"/sys/kernel/debug/tracing/events",
                                           "/sys/kernel/tracing/events"};

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (access(dirs[i], F_OK) >= 0)
                        return dirs[i];
        return NULL;
}

static bool hook_exists(ProbeBpf *b, size_t k, const char *hook)
{
        _cleanup_free_ char *name = NULL;

        if (k == KIND_TRACEPOINT) {
                const char *events = tracefs_events();

                name = events ? strprintf("%s/%s/id", events, hook) : NULL;
                return name && access(name, F_OK) >= 0;
        }
        /* Every tracepoint has a btf_trace_<name> typedef in the kernel's BTF; tp_btf
         * attaches through it, and its absence means raw_tp would not find the
         * tracepoint either. */
        name = strprintf("btf_trace_%s", hook);
        return name && btf__find_by_name_kind(b->vmlinux, name, BTF_KIND_TYPEDEF) >= 0;
}

/* Keeps the programs and maps of one kind. Returns how many programs that leaves, or
 * -ENOENT (naming the hook) when the kernel lacks a tracepoint one of them needs. */
static int set_select_kind(ProbeBpf *b, ProbeSet *set, size_t k, const char **ret_hook)
{
        const char *kind = kinds[k];
        struct bpf_program *prog;
        struct bpf_map *map;
        int r, n = 0;

        bpf_object__for_each_map(map, set->obj)
        {
                const char *name = bpf_map__name(map);
                bool other = false;

                for (size_t i = 0; i < ELEMENTSOF(kind_map_suffix); i++)
                        if (i != k && endswith(name, kind_map_suffix[i]))
                                other = true;
                r = bpf_map__set_autocreate(map, !other);
                if (r < 0)
                        return r;
        }

        bpf_object__for_each_program(prog, set->obj)
        {
                const char *sec = bpf_program__section_name(prog), *hook;
                bool mine;

                hook = strchr(sec, '/');
                hook = hook ? hook + 1 : sec;
                mine = startswith(sec, kind) && sec[strlen(kind)] == '/';
                r = bpf_program__set_autoload(prog, mine);
                if (r < 0)
                        return r;
                if (!mine)
                        continue;
                if (!hook_exists(b, k, hook)) {
                        *ret_hook = hook;
                        return -ENOENT;
                }
                n++;
        }
        return n;
}

static int ringbuf_event(void *ctx, void *data, size_t size)
{
        ProbeBpf *b = ctx;

        if (size >= sizeof(struct probe_tcp_event))
                b->tcp_retransmits++;
        return 0;
}

static int set_post_attach(ProbeBpf *b, ProbeProgram p, ProbeSet *set)
{
        if (p == PROBE_PROGRAM_TCPRETRANS) {
                struct tcpretrans *s = set->skel;

                b->rb = ring_buffer__new(bpf_map__fd(s->maps.events), ringbuf_event, b, NULL);
                if (!b->rb)
                        return negative_errno();
        }
        return 0;
}

static void set_load(ProbeBpf *b, const ProbeOptions *opts, ProbeProgram p)
{
        ProbeSet *set = &b->sets[p];
        const char *name = program_names[p];
        int r;

        if (is_disabled(opts->disable, name, "")) {
                set_reason(set, "disabled by configuration");
                return;
        }
        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                const char *kind = kinds[k], *hook = NULL;

                if (is_disabled(opts->disable, name, kind)) {
                        set_reason(set, "%s: disabled by configuration", kind);
                        continue;
                }

                r = set_open(b, p, set);
                if (r < 0) {
                        set_reason(set, "%s: opening failed: %s", kind, strerror(-r));
                        return;
                }
                r = set_select_kind(b, set, k, &hook);
                if (r == 0) {
                        set_close(set); /* the set has no programs of this kind */
                        continue;
                }
                if (r == -ENOENT) {
                        if (k == KIND_TRACEPOINT && !tracefs_events())
                                set_reason(set, "%s: tracefs is not mounted", kind);
                        else
                                set_reason(set, "%s: kernel has no tracepoint %s", kind, hook);
                        set_close(set);
                        continue;
                }
                if (r >= 0) {
                        r = set->load(set->skel);
                        if (r < 0)
                                set_reason(set, "%s: loading failed: %s", kind, strerror(-r));
                }
                if (r >= 0) {
                        r = set->attach(set->skel);
                        if (r < 0)
                                set_reason(set, "%s: attaching failed: %s", kind, strerror(-r));
                }
                if (r >= 0) {
                        r = set_post_attach(b, p, set);
                        if (r < 0)
                                set_reason(set, "%s: ring buffer: %s", kind, strerror(-r));
                }
                if (r < 0) {
                        set_close(set);
                        continue;
                }
                set->kind = kind;
                set->reason = mfree(set->reason);
                log_debug("probes: %s attached with %s", name, kind);
                return;
        }
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
        /* libbpf explains every failed probe at length; that is debugging material. Our
         * caller logs the one-line reason. */
        if (log_get_max_level() < LOG_DEBUG)
                return 0;
        return vfprintf(stderr, fmt, ap);
}

int probe_bpf_new(const ProbeOptions *opts, bool track_cgroups, ProbeBpf **ret,
                  const char **ret_reason)
{
        _cleanup_(probe_bpf_freep) ProbeBpf *b = NULL;
        int r;

        libbpf_set_print(libbpf_print);

        b = new0(ProbeBpf, 1);
        if (!b)
                return -ENOMEM;
        b->track_cgroups = track_cgroups;
        b->runq_tgid = opts->runq_tgid;

        b->vmlinux = btf__load_vmlinux_btf();
        if (!b->vmlinux) {
                r = negative_errno();
                *ret_reason = "the kernel exposes no BTF (/sys/kernel/btf/vmlinux)";
                return r;
        }

        /* A one-entry map tells "not allowed" (EPERM without CAP_BPF, or without root
         * on kernels older than 5.8) from everything else before the real sets try;
         * libbpf's program-type probe reports both as "unsupported". */
        r = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, sizeof(__u32), sizeof(__u32), 1, NULL);
        if (r < 0) {
                *ret_reason = r == -EPERM || r == -EACCES
                        ? "not allowed to load BPF programs (needs CAP_BPF and "
                          "CAP_PERFMON)"
                        : "the kernel cannot create BPF maps";
                return r;
        }
        safe_close(r);
        r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL);
        if (r <= 0) {
                *ret_reason = "the kernel cannot load raw tracepoint programs";
                return r < 0 ? r : -EOPNOTSUPP;
        }
        /* No such probe for tp_btf: libbpf 1.1 reports BPF_PROG_TYPE_TRACING as missing on
         * every kernel (it tries without an attach target). Loading it is the probe. */

        r = libbpf_num_possible_cpus();
        if (r <= 0) {
                *ret_reason = "cannot count the possible CPUs";
                return r < 0 ? r : -EIO;
        }
        b->ncpus = r;
        b->percpu = new0(struct probe_hist, (size_t)b->ncpus);
        if (!b->percpu)
                return -ENOMEM;

        for (ProbeProgram p = 0; p < _PROBE_PROGRAM_MAX; p++)
                set_load(b, opts, p);
        /* The parsed kernel BTF is tens of MiB that every fork() of the owner would copy
         * page tables for; it is only needed while loading. */
        btf__free(b->vmlinux);
        b->vmlinux = NULL;

        *ret = TAKE_PTR(b);
        return 0;
}

ProbeBpf *probe_bpf_free(ProbeBpf *b)
{
        if (!b)
                return NULL;
        /* the ring buffer first: it holds the map of the set it reads */
        ring_buffer__free(b->rb);
        for (ProbeProgram p = 0; p < _PROBE_PROGRAM_MAX; p++) {
                set_close(&b->sets[p]);
                free(b->sets[p].reason);
        }
        btf__free(b->vmlinux);
        free(b->percpu);
        return mfree(b);
}

bool probe_bpf_loaded(ProbeBpf *b, ProbeProgram p)
{
        return b && b->sets[p].kind;
}

const char *probe_bpf_reason(ProbeBpf *b, ProbeProgram p)
{
        if (probe_bpf_loaded(b, p))
                return NULL;
        return b && b->sets[p].reason ? b->sets[p].reason : "unknown";
}

const char *probe_bpf_kind(ProbeBpf *b, ProbeProgram p)
{
        return b ? b->sets[p].kind : NULL;
}

static int read_hist(ProbeBpf *b, struct bpf_map *map, ProbeHistogram *ret)
{
        __u32 zero = 0;
        int r;

        r = bpf_map__lookup_elem(map, &zero, sizeof(zero), b->percpu,
                                 sizeof(struct probe_hist) * (size_t)b->ncpus, 0);
        if (r < 0)
                return r;
        *ret = (ProbeHistogram){};
        for (int c = 0; c < b->ncpus; c++)
                for (unsigned i = 0; i < PROBE_HISTOGRAM_SLOTS; i++)
                        ret->slots[i] += b->percpu[c].slots[i];
        return 0;
}

int probe_bpf_read_runq(ProbeBpf *b, ProbeHistogram *ret)
{
        struct runqlat *s;

        if (!probe_bpf_loaded(b, PROBE_PROGRAM_RUNQLAT))
                return -ENODEV;
        s = b->sets[PROBE_PROGRAM_RUNQLAT].skel;
        return read_hist(b, s->maps.hist, ret);
}

int probe_bpf_read_io(ProbeBpf *b, ProbeHistogram *ret)
{
        struct biolat *s;

        if (!probe_bpf_loaded(b, PROBE_PROGRAM_BIOLAT))
                return -ENODEV;
        s = b->sets[PROBE_PROGRAM_BIOLAT].skel;
        return read_hist(b, s->maps.hist, ret);
}

int probe_bpf_watch(ProbeBpf *b, pid_t pid, uint64_t cgroup_id, uint64_t key)
{
        struct cpuacct *s;
        __u64 zero = 0, k = key;
        int r;

        if (!probe_bpf_loaded(b, PROBE_PROGRAM_CPUACCT))
                return -ENODEV;
        s = b->sets[PROBE_PROGRAM_CPUACCT].skel;

        r = bpf_map__update_elem(s->maps.usage, &k, sizeof(k), &zero, sizeof(zero), BPF_ANY);
        if (r < 0)
                return r;
        if (cgroup_id != 0 && b->track_cgroups) {
                __u64 cg = cgroup_id;
                r = bpf_map__update_elem(s->maps.watch_cgroups, &cg, sizeof(cg), &k, sizeof(k),
                                         BPF_ANY);
        } else {
                __u32 tgid = (__u32)pid;
                r = bpf_map__update_elem(s->maps.watch_tgids, &tgid, sizeof(tgid), &k, sizeof(k),
                                         BPF_ANY);
        }
        if (r < 0) {
                (void)bpf_map__delete_elem(s->maps.usage, &k, sizeof(k), 0);
                return r;
        }
        /* .bss is mmapped: the programs see the count at once */
        if (cgroup_id != 0 && b->track_cgroups)
                __atomic_add_fetch(&s->bss->n_cgroups, 1, __ATOMIC_RELAXED);
        else
                __atomic_add_fetch(&s->bss->n_tgids, 1, __ATOMIC_RELAXED);
        return 0;
}

int probe_bpf_unwatch(ProbeBpf *b, pid_t pid, uint64_t cgroup_id, uint64_t key)
{
        struct cpuacct *s;
        __u64 k = key;
        __u32 tgid = (__u32)pid;

        if (!probe_bpf_loaded(b, PROBE_PROGRAM_CPUACCT))
                return -ENODEV;
        s = b->sets[PROBE_PROGRAM_CPUACCT].skel;
        /* Entries may be gone already (the process exited): not an error. */
        if (cgroup_id != 0 && b->track_cgroups) {
                __u64 cg = cgroup_id;
                (void)bpf_map__delete_elem(s->maps.watch_cgroups, &cg, sizeof(cg), 0);
                __atomic_sub_fetch(&s->bss->n_cgroups, 1, __ATOMIC_RELAXED);
        } else {
                (void)bpf_map__delete_elem(s->maps.watch_tgids, &tgid, sizeof(tgid), 0);
                __atomic_sub_fetch(&s->bss->n_tgids, 1, __ATOMIC_RELAXED);
        }
        (void)bpf_map__delete_elem(s->maps.usage, &k, sizeof(k), 0);
        return 0;
}

int probe_bpf_task_cpu(ProbeBpf *b, uint64_t key, uint64_t *ret_ns)
{
        struct cpuacct *s;
        __u64 k = key, v;
        int r;

        if (!probe_bpf_loaded(b, PROBE_PROGRAM_CPUACCT))
                return -ENODEV;
        s = b->sets[PROBE_PROGRAM_CPUACCT].skel;
        r = bpf_map__lookup_elem(s->maps.usage, &k, sizeof(k), &v, sizeof(v), 0);
        if (r < 0)
                return r;
        *ret_ns = v;
        return 0;
}

int probe_bpf_event_fd(ProbeBpf *b)
{
        if (!b || !b->rb)
                return -EBADF;
        return ring_buffer__epoll_fd(b->rb);
}

int probe_bpf_handle_events(ProbeBpf *b, uint64_t *tcp_retransmits)
{
        uint64_t before;
        int r;

        if (!b || !b->rb)
                return 0;
        before = b->tcp_retransmits;
        r = ring_buffer__consume(b->rb);
        if (r < 0)
                return r;
        *tcp_retransmits += b->tcp_retransmits - before;
        return r;
}
