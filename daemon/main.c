/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cluster-scheduler: the cluster's control plane. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "basic/string-util.h"
#include "daemon/scheduler-manager.h"
#include "shared/log.h"
#include "shared/sd-util.h"

static const char *arg_config;
static const char *arg_listen, *arg_control, *arg_state_dir, *arg_name, *arg_cluster;
static int arg_auto_approve = -1;
static int arg_log_level = -1;

static void help(void)
{
        printf("Usage: cluster-scheduler [OPTIONS]\n\n"
               "The cluster-ai scheduler: agents join it, clients submit work to it.\n\n"
               "  -c --config FILE        configuration file (default " PKGSYSCONFDIR
               "/scheduler.yaml)\n"
               "  -l --listen ADDR        cluster port address (default 0.0.0.0:8786)\n"
               "  -s --control-socket P   local control socket (default " RUNDIR
               "/scheduler.sock)\n"
               "  -d --state-dir DIR      state directory (default " STATEDIR "/scheduler)\n"
               "  -n --name NAME          scheduler name (default: host name)\n"
               "     --cluster NAME       cluster name (default: default)\n"
               "     --auto-approve       admit every agent without a token (trusted labs)\n"
               "     --log-level LEVEL    debug, info, notice, warning, err\n"
               "  -h --help               this help\n"
               "     --version            version\n\n"
               "Options override the configuration file. SIGHUP reloads it; SIGTERM drains.\n");
}

static int parse_argv(int argc, char **argv)
{
        enum {
                ARG_CLUSTER = 0x100,
                ARG_AUTO,
                ARG_LOG,
                ARG_VERSION
        };
        static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                                {"listen", required_argument, NULL, 'l'},
                                                {"control-socket", required_argument, NULL, 's'},
                                                {"state-dir", required_argument, NULL, 'd'},
                                                {"name", required_argument, NULL, 'n'},
                                                {"cluster", required_argument, NULL, ARG_CLUSTER},
                                                {"auto-approve", no_argument, NULL, ARG_AUTO},
                                                {"log-level", required_argument, NULL, ARG_LOG},
                                                {"help", no_argument, NULL, 'h'},
                                                {"version", no_argument, NULL, ARG_VERSION},
                                                {}};
        int c;

        while ((c = getopt_long(argc, argv, "c:l:s:d:n:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 'l':
                        arg_listen = optarg;
                        break;
                case 's':
                        arg_control = optarg;
                        break;
                case 'd':
                        arg_state_dir = optarg;
                        break;
                case 'n':
                        if (!name_is_valid(optarg)) {
                                log_error("Invalid name '%s'.", optarg);
                                return -EINVAL;
                        }
                        arg_name = optarg;
                        break;
                case ARG_CLUSTER:
                        if (!name_is_valid(optarg)) {
                                log_error("Invalid cluster name '%s'.", optarg);
                                return -EINVAL;
                        }
                        arg_cluster = optarg;
                        break;
                case ARG_AUTO:
                        arg_auto_approve = 1;
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
                        printf("cluster-scheduler " PACKAGE_VERSION "\n");
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
        SchedulerConfig *c = &m->config;
        int r = 0;

        if (arg_listen)
                r = r ?: free_and_strdup(&c->listen, arg_listen);
        if (arg_control)
                r = r ?: free_and_strdup(&c->control_socket, arg_control);
        if (arg_state_dir)
                r = r ?: free_and_strdup(&c->state_dir, arg_state_dir);
        if (arg_name)
                r = r ?: free_and_strdup(&c->name, arg_name);
        if (arg_cluster)
                r = r ?: free_and_strdup(&c->cluster, arg_cluster);
        if (arg_auto_approve >= 0)
                c->auto_approve = arg_auto_approve;
        if (arg_log_level >= 0)
                c->log_level = arg_log_level;
        return r < 0 ? log_oom() : 0;
}

int main(int argc, char **argv)
{
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        log_set_ident("cluster-scheduler");
        log_open();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = manager_new(arg_config, &m);
        if (r < 0)
                return 1;
        r = scheduler_config_load(&m->config, arg_config ?: PKGSYSCONFDIR "/scheduler.yaml",
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
