/*
 * lock_stress.c - the machine lock seen from C, for tests/test_lock_tsan.py.
 *
 * Built with the core's sources under ThreadSanitizer: four threads share one
 * machine through the public entry points, a thread that holds the lock
 * re-enters an entry point, and entries after pa_machine_close() answer
 * PA_ECLOSED.  Any data race makes ThreadSanitizer fail the run.
 */
#include <pthread.h>
#include <stdio.h>

#include "internal.h"

#define THREADS 4
#define ROUNDS 20000

static pa_machine *machine;
static int64_t cache;       /* a kmem_cache of 64-byte objects (the bare core has no kmalloc caches) */

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int64_t pfn = pa_alloc_pages(machine, 0xcc0, i % 3);
        if (pfn < 0 || pa_free_pages(machine, pfn, i % 3))
            return (void *)1;
        int64_t obj = pa_kmem_cache_alloc(machine, cache, 0xcc0, 0);
        if (obj < 0 || pa_kmem_cache_free(machine, cache, obj, 0))
            return (void *)1;
    }
    return NULL;
}

int main(void)
{
    char msg[512];
    if (pa_machine_new(65536, 2, -1, 0, PA_KCONFIG_MASK, &machine))
        return 2;
    cache = pa_kmem_cache_create(machine, 64, 0, 0, 0);
    if (cache < 0)
        return 3;

    pa_lock(machine);                       /* the holder re-enters: no deadlock */
    int64_t pfn = pa_alloc_pages(machine, 0xcc0, 0);
    int rc = pa_free_pages(machine, pfn, 0);
    pa_unlock(machine);
    printf("nested %d %u\n", pfn >= 0 && rc == 0, atomic_load(&machine->lock.word));

    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        failed |= ret != NULL;
    }
    printf("threads %d check %d\n", !failed, pa_check(machine, msg, sizeof msg));

    pa_machine_close(machine);
    printf("closed %d\n", (int)pa_alloc_pages(machine, 0xcc0, 0));
    pa_machine_free(machine);
    return 0;
}
