/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Renders conversations with our chat templates, for the comparison with Jinja.
 *
 *   chat-render < cases
 *
 * Each input line: TEMPLATE_SOURCE_HEX GEN BOS_HEX EOS_HEX [ROLE_HEX CONTENT_HEX]...
 * (an empty field is "-"). The template family is detected from the source. Each output
 * line: the detected family name, a space, the rendered prompt in hex. For ChatML the
 * template's default system prompt goes first when the conversation has none. */
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "engine/chat-template.h"

static char *unhex(const char *s)
{
        size_t n;
        char *out;

        if (streq(s, "-"))
                return strdup("");
        n = strlen(s) / 2;
        out = malloc(n + 1);
        if (!out || unhexmem(s, out, n) < 0) {
                free(out);
                return NULL;
        }
        out[n] = 0;
        return out;
}

int main(void)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        while (getline(&line, &cap, stdin) >= 0) {
                char *fields[66], *save = NULL, *out = NULL;
                _cleanup_free_ char *dflt = NULL;
                ChatMessage msgs[33];
                ChatTemplateKind k;
                size_t nf = 0, nm;
                char *text[66] = {};

                for (char *p = strtok_r(line, " \n", &save); p && nf < ELEMENTSOF(fields);
                     p = strtok_r(NULL, " \n", &save))
                        fields[nf++] = p;
                if (nf < 4 || (nf - 4) % 2 != 0) {
                        fprintf(stderr, "bad line\n");
                        return 2;
                }
                for (size_t i = 0; i < nf; i++)
                        if (i != 1 && !(text[i] = unhex(fields[i]))) {
                                fprintf(stderr, "bad hex\n");
                                return 2;
                        }
                nm = (nf - 4) / 2;
                for (size_t i = 0; i < nm; i++)
                        msgs[i] =
                                (ChatMessage){.role = text[4 + 2 * i], .content = text[5 + 2 * i]};
                (void)chat_template_detect(text[0], &k);
                /* what the engine does with ChatML templates that carry a default prompt */
                if (k == CHAT_TEMPLATE_CHATML && nm > 0 && strcmp(msgs[0].role, "system") != 0 &&
                    chat_template_default_system(text[0], &dflt) > 0) {
                        memmove(msgs + 1, msgs, nm * sizeof(ChatMessage));
                        msgs[0] = (ChatMessage){.role = "system", .content = dflt};
                        nm++;
                }
                if (chat_template_apply(k, msgs, nm, fields[1][0] == '1', text[2], text[3], &out) <
                    0) {
                        fprintf(stderr, "render failed\n");
                        return 1;
                }
                printf("%s ", chat_template_name(k));
                for (const char *p = out; *p; p++)
                        printf("%02x", (uint8_t)*p);
                printf("\n");
                free(out);
                for (size_t i = 0; i < nf; i++)
                        free(text[i]);
        }
        return 0;
}
