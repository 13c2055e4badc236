/* 128-bit integer types for the clearing kernel (GCC/Clang). Products such as notional × rate
   (up to 2^89) and MM × 10^8 are formed exactly in these types and rounded once. */
#ifndef CLEARING_INT128_H
#define CLEARING_INT128_H
#include <stdint.h>
typedef __int128 clr_i128;
typedef unsigned __int128 clr_u128;
#endif
