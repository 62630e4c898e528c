/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `cluster-ai model run|info`: the inference engine on this machine, without a cluster
 * (for trying a GGUF file, and for hosts with no scheduler). */
#include <stdio.h>

#include "basic/string-util.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "shared/log.h"

static const char model_usage[] =
        "Usage: cluster-ai model run [OPTIONS] FILE.gguf PROMPT\n"
        "       cluster-ai model info FILE.gguf\n\n"
        "Runs a GGUF model (llama and qwen2 families; F32, F16, BF16, Q8_0, Q4_0, Q4_K,\n"
        "Q5_K, Q6_K) on this machine's CPU. `model run --help` lists the sampling options.\n";

int verb_model(int argc, char **argv)
{
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                fputs(model_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : 0;
        }
        if (streq(argv[1], "run"))
                return engine_cli_model_run(argc - 1, argv + 1);
        if (streq(argv[1], "info"))
                return engine_cli_model_info(argc - 1, argv + 1);
        log_error("Unknown model command '%s' (run, info).", argv[1]);
        return EXIT_USAGE;
}
