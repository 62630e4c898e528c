/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Template detection on arbitrary text, then rendering a conversation cut out of the
 * same bytes with the detected family and with every other family. */
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/chat-template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *src = NULL;
        ChatTemplateKind kind;
        ChatMessage msgs[8];
        static const char *const roles[] = {"system", "user", "assistant", "tool"};
        size_t n = 0;
        char *p, *save = NULL;
        int r;

        src = malloc(size + 1);
        if (!src)
                return 0;
        memcpy(src, data, size);
        src[size] = 0;

        r = chat_template_detect(src, &kind);
        if (r < 0 || r > 1 || (unsigned)kind >= _CHAT_TEMPLATE_MAX)
                abort();
        if (chat_template_from_name(src, &kind) == 0 && chat_template_detect(src, &kind) != 1)
                abort();

        {
                _cleanup_free_ char *dflt = NULL;
                r = chat_template_default_system(src, &dflt);
                if (r < 0 || (r > 0) != (dflt != NULL) || (dflt && strstr(dflt, "<|im_end|>")))
                        abort();
        }

        /* messages: NUL-terminated text split at newlines */
        for (p = strtok_r(src, "\n", &save); p && n < ELEMENTSOF(msgs);
             p = strtok_r(NULL, "\n", &save)) {
                msgs[n].role = roles[n % ELEMENTSOF(roles)];
                msgs[n].content = p;
                n++;
        }
        for (unsigned k = 0; k < _CHAT_TEMPLATE_MAX; k++)
                for (int gen = 0; gen < 2; gen++) {
                        _cleanup_free_ char *out = NULL;
                        if (chat_template_apply(k, msgs, n, gen, "<s>", "</s>", &out) < 0 || !out)
                                abort();
                }
        return 0;
}
