/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Replays a fuzz target's corpus: every regular file of the directories (or the files)
 * named on the command line goes through LLVMFuzzerTestOneInput() once. A crash or a
 * sanitizer report fails the test. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, unsigned *n)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, &data, &size, 64U * 1024 * 1024);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)data, size);
        (*n)++;
        return 0;
}

int main(int argc, char **argv)
{
        unsigned n = 0;
        int ret = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i], &n) < 0)
                                ret = 1;
                        continue;
                }
                struct dirent **list;
                int k = scandir(argv[i], &list, NULL, alphasort);
                if (k < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                for (int j = 0; j < k; j++) {
                        if (list[j]->d_name[0] != '.') {
                                _cleanup_free_ char *p =
                                        strprintf("%s/%s", argv[i], list[j]->d_name);
                                if (!p || run_file(p, &n) < 0)
                                        ret = 1;
                        }
                        free(list[j]);
                }
                free(list);
        }
        printf("replayed %u inputs\n", n);
        if (n == 0) {
                fprintf(stderr, "empty corpus\n");
                return 1;
        }
        return ret;
}
