/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <limits.h>
#include <string.h>
#include <syslog.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-config.h"
#include "shared/config.h"
#include "shared/log.h"

#define F(field) offsetof(SchedulerConfig, field)
static const ConfigItem scheduler_config_table[] = {
        {"cluster", CONFIG_STRING, F(cluster)},
        {"name", CONFIG_STRING, F(name)},
        {"listen", CONFIG_STRING, F(listen)},
        {"control_socket", CONFIG_STRING, F(control_socket)},
        {"control_socket_mode", CONFIG_MODE, F(control_socket_mode), 0, 07777},
        {"state_dir", CONFIG_STRING, F(state_dir)},
        {"heartbeat_interval", CONFIG_DURATION, F(heartbeat_interval), 100 * USEC_PER_MSEC,
         60 * USEC_PER_SEC},
        {"agent_timeout", CONFIG_DURATION, F(agent_timeout), 500 * USEC_PER_MSEC,
         3600 * USEC_PER_SEC},
        {"drain_timeout", CONFIG_DURATION, F(drain_timeout), 0, 3600 * USEC_PER_SEC},
        {"auto_approve", CONFIG_BOOL, F(auto_approve)},
        {"max_agents", CONFIG_U32, F(max_agents), 1, 100000},
        {"max_clients", CONFIG_U32, F(max_clients), 1, 100000},
        {"max_frame", CONFIG_SIZE, F(max_frame), 64 * 1024, 1024 * 1024 * 1024},
        {"max_tasks_per_agent", CONFIG_U32, F(max_tasks_per_agent), 0, 1000000},
        {"max_queued_tasks", CONFIG_U32, F(max_queued_tasks), 1, 10000000},
        {"log_level", CONFIG_LOG_LEVEL, F(log_level)},
        {"http.listen", CONFIG_STRING, F(http_listen)},
        {"ollama.listen", CONFIG_STRING, F(ollama_listen)},
        {"chat.listen", CONFIG_STRING, F(chat_listen)},
};
#undef F

int scheduler_config_init(SchedulerConfig *c)
{
        char host[HOST_NAME_MAX + 1] = "scheduler";

        (void)gethostname(host, sizeof host);
        host[sizeof host - 1] = 0;
        *c = (SchedulerConfig){
                .cluster = strdup("default"),
                .name = strdup(host),
                .listen = strdup("0.0.0.0:8786"),
                .control_socket = strdup(RUNDIR "/scheduler.sock"),
                .control_socket_mode = 0660,
                .state_dir = strdup(""),
                .heartbeat_interval = 1 * USEC_PER_SEC,
                .agent_timeout = 3 * USEC_PER_SEC,
                .drain_timeout = 10 * USEC_PER_SEC,
                .auto_approve = false,
                .max_agents = 1024,
                .max_clients = 256,
                .max_frame = 16 * 1024 * 1024,
                .max_tasks_per_agent = 0,
                .max_queued_tasks = 1000000,
                .log_level = LOG_INFO,
                .http_listen = strdup("127.0.0.1:8787"),
                .ollama_listen = strdup("127.0.0.1:11434"),
                .chat_listen = strdup("127.0.0.1:3000"),
        };
        if (!c->cluster || !c->name || !c->listen || !c->control_socket || !c->state_dir ||
            !c->http_listen || !c->ollama_listen || !c->chat_listen) {
                scheduler_config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void scheduler_config_done(SchedulerConfig *c)
{
        config_free_fields(scheduler_config_table, ELEMENTSOF(scheduler_config_table), c);
}

/* Empty values mean "the default" (see agent-config.c). */
static int fill_defaults(SchedulerConfig *c)
{
        const char *sd = getenv("STATE_DIRECTORY");
        char host[HOST_NAME_MAX + 1] = "scheduler";
        int r = 0;

        if (isempty(c->name)) {
                (void)gethostname(host, sizeof host);
                host[sizeof host - 1] = 0;
                r = free_and_strdup(&c->name, host);
        }
        if (r >= 0 && isempty(c->state_dir))
                r = free_and_strdup(&c->state_dir,
                                    !isempty(sd) && !strchr(sd, ':') ? sd : STATEDIR "/scheduler");
        return r < 0 ? log_oom() : 0;
}

int scheduler_config_load(SchedulerConfig *c, const char *path, bool must_exist)
{
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_load_file(path, scheduler_config_table, ELEMENTSOF(scheduler_config_table), c,
                             &error);
        if (r == -ENOENT && !must_exist) {
                log_debug("No configuration file %s, using defaults.", path);
                return fill_defaults(c);
        }
        if (r < 0) {
                if (error)
                        return log_error_errno(r, "%s", error);
                return log_error_errno(r, "Failed to load %s: %m", path);
        }
        return fill_defaults(c);
}
