/*
 * prandom.h - the machine's seeded random stream.
 *
 * The kernel draws its freelist orders, its per-cache hardening randoms and
 * random_kmalloc_seed from get_random_*(); a simulator must be reproducible,
 * so every such draw here comes from one SplitMix64 stream started from the
 * machine's seed.  pyalloc/_abi.py prandom_next() is the model's twin: the
 * two backends draw the same numbers in the same order.
 */
#ifndef PYALLOC_PRANDOM_H
#define PYALLOC_PRANDOM_H

#include <stdint.h>

static inline uint64_t pa_prandom_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
