/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the YAML config loader with a table that has every type,
 * ranges and nested sections. Any result is fine; a crash, a leak or a sanitizer report
 * is not. On success the loaded fields are freed again; on error the message must be
 * one line. */
#include <string.h>

#include "basic/alloc-util.h"
#include "shared/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FuzzCfg {
        char *name, *listen, *cert;
        char **list;
        bool flag;
        uint32_t count, ranged, mode;
        uint64_t big, memory, timeout;
        int log_level;
} FuzzCfg;

static const ConfigItem items[] = {
        {"name", CONFIG_STRING, offsetof(FuzzCfg, name), 0, 0},
        {"list", CONFIG_STRV, offsetof(FuzzCfg, list), 0, 0},
        {"flag", CONFIG_BOOL, offsetof(FuzzCfg, flag), 0, 0},
        {"count", CONFIG_U32, offsetof(FuzzCfg, count), 0, 0},
        {"ranged", CONFIG_U32, offsetof(FuzzCfg, ranged), 1, 100},
        {"big", CONFIG_U64, offsetof(FuzzCfg, big), 0, 0},
        {"memory", CONFIG_SIZE, offsetof(FuzzCfg, memory), 4096, 1ULL << 40},
        {"timeout", CONFIG_DURATION, offsetof(FuzzCfg, timeout), 0, 0},
        {"log_level", CONFIG_LOG_LEVEL, offsetof(FuzzCfg, log_level), 0, 0},
        {"mode", CONFIG_MODE, offsetof(FuzzCfg, mode), 0, 0777},
        {"http.listen", CONFIG_STRING, offsetof(FuzzCfg, listen), 0, 0},
        {"http.tls.cert", CONFIG_STRING, offsetof(FuzzCfg, cert), 0, 0},
        /* The keys of the shipped files, so that their seeds get past the first key. */
        {"cluster", CONFIG_STRING, offsetof(FuzzCfg, name), 0, 0},
        {"scheduler", CONFIG_STRING, offsetof(FuzzCfg, listen), 0, 0},
        {"limits.max_processes", CONFIG_U64, offsetof(FuzzCfg, big), 0, 0},
        {"limits.max_file_size", CONFIG_SIZE, offsetof(FuzzCfg, memory), 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        FuzzCfg c = {};
        char *err = NULL;
        int r;

        if (size > CONFIG_MAX_SIZE + 1)
                return 0;

        r = config_load_string("fuzz.yaml", (const char *)data, size, items, ELEMENTSOF(items), &c,
                               &err);
        if (r < 0 && err && strchr(err, '\n'))
                abort(); /* messages are one line, whatever the input */
        if (r >= 0 && err)
                abort();
        free(err);
        config_free_fields(items, ELEMENTSOF(items), &c);
        return 0;
}
