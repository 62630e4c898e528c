/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* YAML configuration files (libyaml), checked against a table of keys.
 *
 * A table maps dotted key paths ("http.listen") to typed fields of a caller's struct.
 * Loading is strict: an unknown key, a wrong type, a value out of range, a duplicate
 * key, an anchor/alias, a document over the size or depth limit, or YAML that does not
 * parse is an error whose message names file:line:column and the key, e.g.
 *   /etc/cluster-ai/agent.yaml:4:3: unknown key 'schedular' (did you mean 'scheduler'?)
 *   agent.yaml:7:10: key 'max_tasks': expected an unsigned integer, got 'many'
 * Fields keep their defaults (set by the caller before loading) when a key is absent.
 * A missing file is -ENOENT with no error text, so callers can treat it as "use the
 * defaults". */

#include "basic/macro.h"

typedef enum ConfigType {
        CONFIG_STRING, /* char *, malloc'ed, replaces the previous value */
        CONFIG_STRV, /* char **: a YAML sequence of scalars (or one scalar) */
        CONFIG_BOOL, /* bool */
        CONFIG_U32, /* uint32_t */
        CONFIG_U64, /* uint64_t */
        CONFIG_SIZE, /* uint64_t bytes: "512M", "4G", 1024 */
        CONFIG_DURATION, /* uint64_t usec: "30s", "500ms", 2 (seconds) */
        CONFIG_LOG_LEVEL, /* int: "debug", "info", ... */
        CONFIG_MODE, /* uint32_t: octal file mode "0660" */
} ConfigType;

typedef struct ConfigItem {
        const char *key; /* dotted path */
        ConfigType type;
        size_t offset; /* offsetof(struct, field) */
        uint64_t min, max; /* for integer types; 0,0 = the type's range */
} ConfigItem;

#define CONFIG_MAX_SIZE (1024U * 1024U) /* bytes of one file */
#define CONFIG_MAX_DEPTH 16

/* Loads path into target. On error returns -errno and, when ret_error is not NULL,
 * a malloc'ed one-line message (file:line:col: ...). */
int config_load_file(const char *path, const ConfigItem *table, size_t n_items, void *target,
                     char **ret_error);
/* Same on a memory buffer; name is used in messages. */
int config_load_string(const char *name, const char *data, size_t size, const ConfigItem *table,
                       size_t n_items, void *target, char **ret_error);
/* Frees the CONFIG_STRING and CONFIG_STRV fields named by the table. */
void config_free_fields(const ConfigItem *table, size_t n_items, void *target);
