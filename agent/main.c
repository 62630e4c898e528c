/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cluster-agent: runs the cluster's work on this host. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent-manager.h"
#include "basic/string-util.h"
#include "shared/log.h"
#include "shared/sd-util.h"

static const char *arg_config, *arg_scheduler, *arg_name, *arg_state_dir, *arg_token, *arg_cluster,
        *arg_memory;
static int arg_cpus = -1, arg_max_tasks = -1, arg_log_level = -1;

static void help(void)
{
        printf("Usage: cluster-agent [OPTIONS]\n\n"
               "The cluster-ai agent: joins a scheduler and runs its tasks on this host.\n\n"
               "  -c --config FILE        configuration file (default " PKGSYSCONFDIR
               "/agent.yaml)\n"
               "  -s --scheduler ADDR     scheduler address HOST:PORT\n"
               "  -n --name NAME          agent name (default: host name)\n"
               "  -d --state-dir DIR      state directory (default " STATEDIR "/agent)\n"
               "  -t --token TOKEN        join token (from cluster-ai token create)\n"
               "     --cluster NAME       cluster to join (default: default)\n"
               "     --cpus N             CPUs offered (default: all)\n"
               "     --memory SIZE        memory offered (default: all)\n"
               "     --max-tasks N        concurrent tasks (default: CPUs)\n"
               "     --log-level LEVEL    debug, info, notice, warning, err\n"
               "     --probe [OPTIONS]    print this host's probe snapshots and exit\n"
               "                          (--interval S, --count N, --json, --no-bpf)\n"
               "  -h --help               this help\n"
               "     --version            version\n");
}

static int parse_argv(int argc, char **argv)
{
        enum {
                ARG_CLUSTER = 0x100,
                ARG_CPUS,
                ARG_MEMORY,
                ARG_MAX_TASKS,
                ARG_LOG,
                ARG_VERSION
        };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"scheduler", required_argument, NULL, 's'},
                {"name", required_argument, NULL, 'n'},
                {"state-dir", required_argument, NULL, 'd'},
                {"token", required_argument, NULL, 't'},
                {"cluster", required_argument, NULL, ARG_CLUSTER},
                {"cpus", required_argument, NULL, ARG_CPUS},
                {"memory", required_argument, NULL, ARG_MEMORY},
                {"max-tasks", required_argument, NULL, ARG_MAX_TASKS},
                {"log-level", required_argument, NULL, ARG_LOG},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {}};
        uint32_t u;
        int c;

        while ((c = getopt_long(argc, argv, "c:s:n:d:t:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 's':
                        arg_scheduler = optarg;
                        break;
                case 'n':
                        if (!name_is_valid(optarg)) {
                                log_error("Invalid agent name '%s' (1-63 of A-Z a-z 0-9 . _ -).",
                                          optarg);
                                return -EINVAL;
                        }
                        arg_name = optarg;
                        break;
                case 'd':
                        arg_state_dir = optarg;
                        break;
                case 't':
                        arg_token = optarg;
                        break;
                case ARG_CLUSTER:
                        arg_cluster = optarg;
                        break;
                case ARG_CPUS:
                        if (safe_atou32(optarg, &u) < 0 || u > 65536) {
                                log_error("Invalid --cpus '%s'.", optarg);
                                return -EINVAL;
                        }
                        arg_cpus = (int)u;
                        break;
                case ARG_MEMORY: {
                        uint64_t v;
                        if (parse_size(optarg, &v) < 0) {
                                log_error("Invalid --memory '%s' (e.g. 4G).", optarg);
                                return -EINVAL;
                        }
                        arg_memory = optarg;
                        break;
                }
                case ARG_MAX_TASKS:
                        if (safe_atou32(optarg, &u) < 0 || u > 100000) {
                                log_error("Invalid --max-tasks '%s'.", optarg);
                                return -EINVAL;
                        }
                        arg_max_tasks = (int)u;
                        break;
                case ARG_LOG:
                        arg_log_level = log_parse_level(optarg);
                        if (arg_log_level < 0) {
                                log_error("Invalid log level '%s'.", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("cluster-agent " PACKAGE_VERSION "\n");
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'.", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int apply_options(Manager *m)
{
        AgentConfig *c = &m->config;
        int r = 0;

        if (arg_scheduler)
                r = r ?: free_and_strdup(&c->scheduler, arg_scheduler);
        if (arg_name)
                r = r ?: free_and_strdup(&c->name, arg_name);
        if (arg_state_dir)
                r = r ?: free_and_strdup(&c->state_dir, arg_state_dir);
        if (arg_token)
                r = r ?: free_and_strdup(&c->token, arg_token);
        if (arg_cluster)
                r = r ?: free_and_strdup(&c->cluster, arg_cluster);
        if (arg_memory)
                (void)parse_size(arg_memory, &c->memory);
        if (arg_cpus >= 0)
                c->cpus = (uint32_t)arg_cpus;
        if (arg_max_tasks >= 0)
                c->max_tasks = (uint32_t)arg_max_tasks;
        if (arg_log_level >= 0)
                c->log_level = arg_log_level;
        return r < 0 ? log_oom() : 0;
}

int main(int argc, char **argv)
{
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        log_set_ident("cluster-agent");
        log_open();
        /* `cluster-agent --probe [...]`: look at this host's probes, no cluster. */
        if (argc >= 2 && streq(argv[1], "--probe")) {
                argv[1] = argv[0];
                return probe_cli_main(argc - 1, argv + 1);
        }
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = manager_new(arg_config, &m);
        if (r < 0)
                return 1;
        r = agent_config_load(&m->config, arg_config ?: PKGSYSCONFDIR "/agent.yaml",
                              arg_config != NULL);
        if (r < 0)
                return 1;
        r = apply_options(m);
        if (r < 0)
                return 1;
        if (getenv("CLUSTER_LOG_LEVEL") == NULL || arg_log_level >= 0)
                log_set_max_level(m->config.log_level);

        r = manager_startup(m);
        if (r < 0) {
                (void)notifyf("STATUS=Failed to start: %s", strerror(-r));
                return 1;
        }
        (void)notify("READY=1");
        r = manager_run(m);
        (void)notify("STOPPING=1");
        return r < 0 ? 1 : r;
}
