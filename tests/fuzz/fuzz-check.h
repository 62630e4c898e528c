/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdlib.h>

/* A fuzz target's invariant: checked in release builds too (where assert() is gone),
 * and a failure is a crash the fuzzer and the corpus replay both see. */
#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x))                                                                          \
                        abort();                                                                   \
        } while (0)
