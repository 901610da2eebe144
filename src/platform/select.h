/* Picks the register-switching header for the CPU and ABI being built. */
#ifndef GREENLET_PLATFORM_SELECT_H
#define GREENLET_PLATFORM_SELECT_H

#if defined(__x86_64__) && !defined(_WIN32)
#  include "switch_x86_64_sysv.h"
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#  include "switch_aarch64_gcc.h"
#else
#  error "greenlet: no stack switching code for this platform"
#endif

#endif
