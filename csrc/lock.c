/*
 * lock.c - the per-machine lock every pa_* entry point takes (see PA_ENTRY in
 * internal.h for how an entry point is wrapped).
 *
 * Why a spin lock and not a pthread mutex: the fast path is one atomic
 * exchange to take it and a release store to drop it, which is all an
 * uncontended call pays.  Critical sections are one core operation, usually
 * well under a microsecond, so a waiter spins a little with PAUSE; after that
 * it yields the CPU on every retry, because on an oversubscribed host the
 * holder may have been descheduled mid-call, and spinning would only delay it.
 *
 * The owner is recorded (pthread_self()) so that a thread that already holds
 * the lock and enters again -- an entry point calling another public entry
 * point instead of its _locked twin -- nests instead of deadlocking.
 */
#include <sched.h>

#include "internal.h"

#define PA_LOCK_SPINS 128

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void pa_lock_slow(pa_machine *m)
{
    uintptr_t self = pa_lock_self();
    /* only this thread ever stores its own id, and it clears it before it
     * unlocks, so seeing it here means this thread holds the lock now */
    if (atomic_load_explicit(&m->lock.owner, memory_order_relaxed) == self) {
        m->lock.depth++;
        return;
    }
    for (unsigned spins = 0;; spins++) {
        if (!atomic_load_explicit(&m->lock.word, memory_order_relaxed)
            && !atomic_exchange_explicit(&m->lock.word, 1u, memory_order_acquire))
            break;
        if (spins < PA_LOCK_SPINS)
            cpu_relax();
        else
            sched_yield();
    }
    atomic_store_explicit(&m->lock.owner, self, memory_order_relaxed);
}
