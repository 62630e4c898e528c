/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The probe view without the agent, for the tests (not installed):
 * probe-tool [--interval S] [--count N] [--json] [--no-bpf] [--disable NAME] ... */
#include "probe.h"
#include "shared/log.h"

int main(int argc, char **argv)
{
        log_set_ident("probe-tool");
        log_open();
        return probe_cli_main(argc, argv);
}
