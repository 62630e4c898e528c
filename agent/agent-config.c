/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <syslog.h>

#include "agent/agent-config.h"
#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "shared/config.h"
#include "shared/log.h"

#define F(field) offsetof(AgentConfig, field)
static const ConfigItem agent_config_table[] = {
        {"scheduler", CONFIG_STRING, F(scheduler)},
        {"name", CONFIG_STRING, F(name)},
        {"cluster", CONFIG_STRING, F(cluster)},
        {"token", CONFIG_STRING, F(token)},
        {"token_file", CONFIG_STRING, F(token_file)},
        {"state_dir", CONFIG_STRING, F(state_dir)},
        {"cpus", CONFIG_U32, F(cpus), 0, 65536},
        {"memory", CONFIG_SIZE, F(memory)},
        {"max_tasks", CONFIG_U32, F(max_tasks), 0, 100000},
        {"run_as", CONFIG_STRING, F(run_as)},
        {"task_dir", CONFIG_STRING, F(task_dir)},
        {"output_window", CONFIG_SIZE, F(output_window), 4096, 256 * 1024 * 1024},
        {"reconnect_min", CONFIG_DURATION, F(reconnect_min), 10 * USEC_PER_MSEC,
         600 * USEC_PER_SEC},
        {"reconnect_max", CONFIG_DURATION, F(reconnect_max), 10 * USEC_PER_MSEC,
         3600 * USEC_PER_SEC},
        {"limits.max_processes", CONFIG_U64, F(max_processes)},
        {"limits.max_open_files", CONFIG_U64, F(max_open_files)},
        {"limits.max_file_size", CONFIG_SIZE, F(max_file_size)},
        {"log_level", CONFIG_LOG_LEVEL, F(log_level)},
        {"probes.bpf", CONFIG_BOOL, F(probes_bpf)},
        {"probes.disable", CONFIG_STRV, F(probes_disable)},
};
#undef F

/* Host names may hold characters agent names may not ("my_host.local" is fine,
 * "host name" is not): map anything else to '-'. */
static char *default_name(void)
{
        char host[HOST_NAME_MAX + 1] = "agent";

        (void)gethostname(host, sizeof host);
        host[sizeof host - 1] = 0;
        host[63] = 0;
        for (char *p = host; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
                        *p = '-';
        if (!name_is_valid(host))
                strcpy(host, "agent");
        return strdup(host);
}

int agent_config_init(AgentConfig *c)
{
        *c = (AgentConfig){
                .scheduler = strdup(""),
                .name = default_name(),
                .cluster = strdup("default"),
                .token = strdup(""),
                .token_file = strdup(""),
                .state_dir = strdup(""),
                .run_as = strdup("cluster-ai-task"),
                .task_dir = strdup(""),
                .output_window = 1024 * 1024,
                .reconnect_min = 500 * USEC_PER_MSEC,
                .reconnect_max = 30 * USEC_PER_SEC,
                .max_processes = 4096,
                .max_open_files = 65536,
                .max_file_size = 0,
                .log_level = LOG_INFO,
                .probes_bpf = true,
        };
        if (!c->scheduler || !c->name || !c->cluster || !c->token || !c->token_file ||
            !c->state_dir || !c->run_as || !c->task_dir) {
                agent_config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void agent_config_done(AgentConfig *c)
{
        config_free_fields(agent_config_table, ELEMENTSOF(agent_config_table), c);
}

/* Empty values mean "the default": name '' is the host name, state_dir '' is where the
 * service manager put it ($STATE_DIRECTORY, from StateDirectory=) or the built-in path. */
static int fill_defaults(AgentConfig *c)
{
        const char *sd = getenv("STATE_DIRECTORY");

        if (isempty(c->name)) {
                free(c->name);
                c->name = default_name();
                if (!c->name)
                        return -ENOMEM;
        }
        if (isempty(c->state_dir))
                return free_and_strdup(&c->state_dir,
                                       !isempty(sd) && !strchr(sd, ':') ? sd : STATEDIR "/agent");
        return 0;
}

int agent_config_load(AgentConfig *c, const char *path, bool must_exist)
{
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_load_file(path, agent_config_table, ELEMENTSOF(agent_config_table), c, &error);
        if (r == -ENOENT && !must_exist)
                return fill_defaults(c) < 0 ? log_oom() : 0;
        if (r < 0) {
                if (error)
                        return log_error_errno(r, "%s", error);
                return log_error_errno(r, "Failed to load %s: %m", path);
        }
        return fill_defaults(c) < 0 ? log_oom() : 0;
}
