/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "basic/string-util.h"
#include "basic/time-util.h"
#include "cli/cli.h"
#include "shared/log.h"

static const char token_usage[] =
        "Usage: cluster-ai token create [--ttl DURATION] [--description TEXT]\n"
        "       cluster-ai token list [--json]\n"
        "       cluster-ai token revoke ID\n\n"
        "Join tokens admit new agents (cluster-agent --token TOKEN). The secret is shown\n"
        "once, at creation; the scheduler keeps only its hash.\n";

static const char *format_wall(char *buf, size_t n, uint64_t usec)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0)
                return "never";
        strftime(buf, n, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
        return buf;
}

int verb_token(int argc, char **argv)
{
        static const struct option options[] = {{"ttl", required_argument, NULL, 't'},
                                                {"description", required_argument, NULL, 'd'},
                                                {"json", no_argument, NULL, 'j'},
                                                {"help", no_argument, NULL, 'h'},
                                                {}};
        _cleanup_(client_freep) Client *cl = NULL;
        Cluster__TokenRequest req = CLUSTER__TOKEN_REQUEST__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT, *reply = NULL;
        const char *op;
        uint64_t ttl = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "t:d:jh", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        if (parse_duration(optarg, &ttl) < 0 || ttl == 0) {
                                log_error("Invalid --ttl '%s' (e.g. 1h, 7d).", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'd':
                        req.description = optarg;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case 'h':
                        printf("%s", token_usage);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                fprintf(stderr, "%s", token_usage);
                return EXIT_USAGE;
        }
        op = argv[optind++];
        if (streq(op, "create") && optind == argc)
                req.op = CLUSTER__TOKEN_OP__TOKEN_OP_CREATE;
        else if (streq(op, "list") && optind == argc)
                req.op = CLUSTER__TOKEN_OP__TOKEN_OP_LIST;
        else if (streq(op, "revoke") && optind + 1 == argc) {
                req.op = CLUSTER__TOKEN_OP__TOKEN_OP_REVOKE;
                req.id = argv[optind];
        } else {
                fprintf(stderr, "%s", token_usage);
                return EXIT_USAGE;
        }
        req.ttl_usec = ttl;
        req.request_id = 1;

        r = client_connect(&cl);
        if (r < 0)
                return EXIT_UNREACHABLE;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TOKEN_REQUEST;
        env.token_request = &req;
        r = client_request(cl, &env, 1, &reply);
        if (r == -EREMOTEIO) {
                log_error("%s", strna(reply->error->message));
                cluster__envelope__free_unpacked(reply, NULL);
                return 1;
        }
        if (r < 0)
                return 1;

        Cluster__TokenReply *tr = reply->token_reply;
        if (req.op == CLUSTER__TOKEN_OP__TOKEN_OP_CREATE && tr->n_tokens == 1) {
                if (arg_json) {
                        json_t *o = json_pack("{s:s,s:s,s:I}", "id", tr->tokens[0]->id, "token",
                                              tr->tokens[0]->secret, "expires_usec",
                                              (json_int_t)tr->tokens[0]->expires_usec);
                        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
                        if (s)
                                puts(s);
                        free(s);
                        json_decref(o);
                } else
                        printf("%s\n", tr->tokens[0]->secret);
        } else if (req.op == CLUSTER__TOKEN_OP__TOKEN_OP_LIST) {
                if (arg_json) {
                        json_t *a = json_array();
                        for (size_t i = 0; i < tr->n_tokens; i++) {
                                Cluster__Token *t = tr->tokens[i];
                                json_array_append_new(
                                        a,
                                        json_pack("{s:s,s:s,s:I,s:I,s:i,s:b}", "id", t->id,
                                                  "description", strempty(t->description),
                                                  "created_usec", (json_int_t)t->created_usec,
                                                  "expires_usec", (json_int_t)t->expires_usec,
                                                  "uses", (int)t->uses, "revoked", t->revoked));
                        }
                        char *s = json_dumps(a, JSON_INDENT(2));
                        if (s)
                                puts(s);
                        free(s);
                        json_decref(a);
                } else {
                        printf("%-10s %-20s %-20s %5s %-8s %s\n", "ID", "CREATED", "EXPIRES",
                               "USES", "STATE", "DESCRIPTION");
                        for (size_t i = 0; i < tr->n_tokens; i++) {
                                Cluster__Token *t = tr->tokens[i];
                                char a[32], b[32];
                                bool expired =
                                        t->expires_usec && t->expires_usec < now(CLOCK_REALTIME);
                                printf("%-10s %-20s %-20s %5u %-8s %s\n", t->id,
                                       format_wall(a, sizeof a, t->created_usec),
                                       format_wall(b, sizeof b, t->expires_usec), t->uses,
                                       t->revoked        ? "revoked"
                                               : expired ? "expired"
                                                         : "valid",
                                       strempty(t->description));
                        }
                }
        } else if (req.op == CLUSTER__TOKEN_OP__TOKEN_OP_REVOKE && !arg_json)
                printf("Token %s revoked.\n", req.id);
        cluster__envelope__free_unpacked(reply, NULL);
        return 0;
}
