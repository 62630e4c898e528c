/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cluster-ai: the command a person types. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "basic/string-util.h"
#include "cli/cli.h"
#include "shared/log.h"

const char *arg_socket;
bool arg_json;

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} verbs[] = {
        {"status", verb_status, "summarize the cluster"},
        {"workers", verb_workers, "list the agents"},
        {"run", verb_run, "run a command on the cluster"},
        {"token", verb_token, "create, list or revoke join tokens"},
        {"model", verb_model, "run or inspect a GGUF model on this machine"},
};

static void help(void)
{
        printf("Usage: cluster-ai [--socket PATH] COMMAND [ARGS...]\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-10s %s\n", verbs[i].name, verbs[i].help);
        printf("\nOptions:\n"
               "  -S --socket PATH   scheduler control socket (default $CLUSTER_AI_SOCKET "
               "or " RUNDIR "/scheduler.sock)\n"
               "  -h --help          this help; COMMAND --help for a command's\n"
               "     --version       version\n\n"
               "Exit codes: 0 success, 1 failure, 2 usage, 3 scheduler unreachable; run has "
               "its own (see run --help).\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {{"socket", required_argument, NULL, 'S'},
                                                {"help", no_argument, NULL, 'h'},
                                                {"version", no_argument, NULL, 'V'},
                                                {}};
        int c;

        log_set_ident("cluster-ai");
        log_open();
        /* '+': options after the verb belong to the verb. */
        while ((c = getopt_long(argc, argv, "+S:h", options, NULL)) >= 0)
                switch (c) {
                case 'S':
                        arg_socket = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("cluster-ai " PACKAGE_VERSION "\n");
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].fn(argc - optind, argv + optind);
        log_error("Unknown command '%s' (see cluster-ai --help).", argv[optind]);
        return EXIT_USAGE;
}
