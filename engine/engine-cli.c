/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `cluster-ai model run|info`: local use of the engine without the cluster. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/engine.h"

static int print_text(void *userdata, const char *text, size_t len)
{
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return 0;
}

static const char *stop_reason_name(EngineStopReason r)
{
        switch (r) {
        case ENGINE_STOP_EOG:
                return "end of generation";
        case ENGINE_STOP_LENGTH:
                return "length";
        case ENGINE_STOP_SEQUENCE:
                return "stop sequence";
        case ENGINE_STOP_CONTEXT:
                return "context full";
        case ENGINE_STOP_CALLBACK:
                return "interrupted";
        }
        return "unknown";
}

static void run_usage(FILE *f)
{
        fputs("Usage: model run [OPTIONS] FILE.gguf PROMPT\n"
              "  -n, --num-predict N     tokens to generate (default 128, -1: until the context is "
              "full)\n"
              "  -t, --threads N         compute threads (default: physical cores)\n"
              "  -c, --ctx-size N        context length (default: the model's, at most 4096)\n"
              "      --temp T            temperature (default 0.8; 0: greedy)\n"
              "      --top-k N           (default 40)\n"
              "      --top-p P           (default 0.95)\n"
              "      --min-p P           (default 0.05)\n"
              "      --repeat-penalty R  (default 1.0)\n"
              "      --seed N            sampling seed (default 0)\n"
              "      --stop TEXT         stop sequence (repeatable)\n"
              "      --chat              wrap PROMPT as a user message in the model's chat "
              "template\n"
              "      --system TEXT       system message for --chat\n"
              "      --kv-f32            keep the KV cache in F32\n"
              "      --verbose           print timings to stderr\n",
              f);
}

int engine_cli_model_run(int argc, char **argv)
{
        enum {
                ARG_TEMP = 256,
                ARG_TOPK,
                ARG_TOPP,
                ARG_MINP,
                ARG_REPEAT,
                ARG_SEED,
                ARG_STOP,
                ARG_CHAT,
                ARG_SYSTEM,
                ARG_KVF32,
                ARG_VERBOSE
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"num-predict", required_argument, NULL, 'n'},
                {"threads", required_argument, NULL, 't'},
                {"ctx-size", required_argument, NULL, 'c'},
                {"temp", required_argument, NULL, ARG_TEMP},
                {"top-k", required_argument, NULL, ARG_TOPK},
                {"top-p", required_argument, NULL, ARG_TOPP},
                {"min-p", required_argument, NULL, ARG_MINP},
                {"repeat-penalty", required_argument, NULL, ARG_REPEAT},
                {"seed", required_argument, NULL, ARG_SEED},
                {"stop", required_argument, NULL, ARG_STOP},
                {"chat", no_argument, NULL, ARG_CHAT},
                {"system", required_argument, NULL, ARG_SYSTEM},
                {"kv-f32", no_argument, NULL, ARG_KVF32},
                {"verbose", no_argument, NULL, ARG_VERBOSE},
                {}};
        EngineContextParams cp;
        EngineGenerateRequest req = {};
        const char *stops[16];
        size_t n_stop = 0;
        bool chat = false, verbose = false;
        const char *system_msg = NULL;
        EngineModel *m = NULL;
        EngineContext *c = NULL;
        char *error = NULL, *formatted = NULL;
        int r, opt;

        engine_context_params_default(&cp);
        cp.n_seq_max = 1;
        engine_sampling_default(&req.sampling);
        req.num_predict = 128;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "hn:t:c:", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        run_usage(stdout);
                        return 0;
                case 'n':
                        req.num_predict = atoi(optarg);
                        break;
                case 't':
                        cp.n_threads = (uint32_t)atoi(optarg);
                        break;
                case 'c':
                        cp.n_ctx = (uint32_t)atoi(optarg);
                        break;
                case ARG_TEMP:
                        req.sampling.temperature = strtof(optarg, NULL);
                        break;
                case ARG_TOPK:
                        req.sampling.top_k = atoi(optarg);
                        break;
                case ARG_TOPP:
                        req.sampling.top_p = strtof(optarg, NULL);
                        break;
                case ARG_MINP:
                        req.sampling.min_p = strtof(optarg, NULL);
                        break;
                case ARG_REPEAT:
                        req.sampling.repeat_penalty = strtof(optarg, NULL);
                        break;
                case ARG_SEED:
                        req.sampling.seed = strtoull(optarg, NULL, 0);
                        break;
                case ARG_STOP:
                        if (n_stop >= ELEMENTSOF(stops)) {
                                fprintf(stderr, "Too many --stop options.\n");
                                return 2;
                        }
                        stops[n_stop++] = optarg;
                        break;
                case ARG_CHAT:
                        chat = true;
                        break;
                case ARG_SYSTEM:
                        system_msg = optarg;
                        break;
                case ARG_KVF32:
                        cp.kv_f32 = true;
                        break;
                case ARG_VERBOSE:
                        verbose = true;
                        break;
                default:
                        run_usage(stderr);
                        return 2;
                }
        }
        if (argc - optind != 2) {
                run_usage(stderr);
                return 2;
        }
        const char *path = argv[optind], *prompt = argv[optind + 1];

        r = engine_model_load(path, &m, &error);
        if (r < 0) {
                fprintf(stderr, "Failed to load %s: %s\n", path, error ?: strerror(-r));
                free(error);
                return 1;
        }
        r = engine_context_new(m, &cp, &c);
        if (r < 0) {
                fprintf(stderr, "Failed to create a context: %s\n", strerror(-r));
                engine_model_free(m);
                return 1;
        }
        if (chat) {
                EngineChatMessage msgs[2];
                size_t nm = 0;
                if (system_msg)
                        msgs[nm++] = (EngineChatMessage){"system", system_msg};
                msgs[nm++] = (EngineChatMessage){"user", prompt};
                r = engine_chat_format(m, msgs, nm, true, &formatted);
                if (r < 0) {
                        fprintf(stderr, "Failed to apply the chat template: %s\n", strerror(-r));
                        goto out;
                }
                prompt = formatted;
        }
        req.prompt = prompt;
        req.prompt_len = strlen(prompt);
        req.add_special = true;
        req.parse_special = chat;
        req.stop = stops;
        req.n_stop = n_stop;
        req.callback = print_text;
        r = engine_generate(c, &req, 1);
        if (r >= 0 && req.error < 0)
                r = req.error;
        fputc('\n', stdout);
        if (r < 0) {
                fprintf(stderr, "Generation failed: %s\n", strerror(-r));
                goto out;
        }
        if (verbose)
                fprintf(stderr,
                        "prompt: %zu tokens in %.3f s (%.2f tok/s); generated %zu tokens in %.3f s "
                        "(%.2f tok/s); stop: %s\n",
                        req.n_prompt, req.prompt_usec / 1e6,
                        req.prompt_usec ? req.n_prompt / (req.prompt_usec / 1e6) : 0.0,
                        req.n_tokens, req.gen_usec / 1e6,
                        req.gen_usec && req.n_tokens > 1 ? (req.n_tokens - 1) / (req.gen_usec / 1e6)
                                                         : 0.0,
                        stop_reason_name(req.stop_reason));
out:
        engine_generate_request_done(&req);
        free(formatted);
        engine_context_free(c);
        engine_model_free(m);
        return r < 0 ? 1 : 0;
}

int engine_cli_model_info(int argc, char **argv)
{
        EngineModel *m = NULL;
        EngineModelInfo info;
        EngineTypeCount mix[32];
        char *error = NULL;
        int r;

        if (argc != 2 || argv[1][0] == '-') {
                fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
                        "Usage: model info FILE.gguf\n");
                return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
        }
        r = engine_model_load(argv[1], &m, &error);
        if (r < 0) {
                fprintf(stderr, "Failed to load %s: %s\n", argv[1], error ?: strerror(-r));
                free(error);
                return 1;
        }
        engine_model_get_info(m, &info);
        printf("file:           %s (%.1f MiB)\n", argv[1], info.file_size / 1048576.0);
        printf("name:           %s\n", info.name[0] ? info.name : "(none)");
        printf("architecture:   %s\n", info.arch);
        printf("parameters:     %" PRIu64 " (%.2f B)\n", info.n_params, info.n_params / 1e9);
        printf("type:           %s\n", info.file_type);
        printf("context:        %u (training)\n", info.n_ctx_train);
        printf("embedding:      %u\n", info.n_embd);
        printf("layers:         %u\n", info.n_layer);
        printf("heads:          %u (kv %u, dim %u)\n", info.n_head, info.n_head_kv, info.head_dim);
        printf("feed forward:   %u\n", info.n_ff);
        printf("rope base:      %g\n", info.rope_freq_base);
        printf("vocabulary:     %u%s\n", info.n_vocab, info.has_tokenizer ? "" : " (no tokenizer)");
        printf("chat template:  %s%s\n", info.chat_template,
               info.chat_template_recognized ? "" : " (fallback: template not recognized)");
        printf("kernels:        %s\n", info.kernels);
        size_t n = engine_model_type_mix(m, mix, ELEMENTSOF(mix));
        printf("tensor types:  ");
        for (size_t i = 0; i < MIN(n, ELEMENTSOF(mix)); i++)
                printf(" %s x%zu (%.1f MiB)", mix[i].type, mix[i].n_tensors,
                       mix[i].bytes / 1048576.0);
        printf("\n");
        engine_model_free(m);
        return 0;
}
