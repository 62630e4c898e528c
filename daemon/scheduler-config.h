/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The scheduler's settings: defaults, then /etc/cluster-ai/scheduler.yaml (or
 * --config), then command-line options. SIGHUP re-reads the file; settings that need
 * new sockets only take effect on restart. */

#include "basic/macro.h"
#include "basic/time-util.h"

typedef struct SchedulerConfig {
        char *cluster;
        char *name;
        char *listen;
        char *control_socket;
        uint32_t control_socket_mode;
        char *state_dir;
        uint64_t heartbeat_interval; /* usec */
        uint64_t agent_timeout; /* usec */
        uint64_t drain_timeout; /* usec */
        bool auto_approve;
        uint32_t max_agents;
        uint32_t max_clients;
        uint64_t max_frame;
        uint32_t max_tasks_per_agent;
        uint32_t max_queued_tasks;
        int log_level;
        char *http_listen;
        char *ollama_listen;
        char *chat_listen;
} SchedulerConfig;

int scheduler_config_init(SchedulerConfig *c);
void scheduler_config_done(SchedulerConfig *c);
/* Loads path over the current values. A missing file is fine when !must_exist.
 * Logs and returns -errno on errors. */
int scheduler_config_load(SchedulerConfig *c, const char *path, bool must_exist);
