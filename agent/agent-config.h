/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The agent's settings: defaults, then /etc/cluster-ai/agent.yaml (or --config), then
 * command-line options. */

#include "basic/macro.h"
#include "basic/time-util.h"

typedef struct AgentConfig {
        char *scheduler; /* "" = discover */
        char *name;
        char *cluster;
        char *token;
        char *token_file;
        char *state_dir;
        uint32_t cpus;
        uint64_t memory;
        uint32_t max_tasks;
        char *run_as;
        char *task_dir;
        uint64_t output_window;
        uint64_t reconnect_min;
        uint64_t reconnect_max;
        uint64_t max_processes;
        uint64_t max_open_files;
        uint64_t max_file_size;
        int log_level;
        bool probes_bpf;
        char **probes_disable;
} AgentConfig;

int agent_config_init(AgentConfig *c);
void agent_config_done(AgentConfig *c);
int agent_config_load(AgentConfig *c, const char *path, bool must_exist);
