/* A real 32-bit program: built with `gcc -m32 -nostdlib` (no 32-bit C library needed), it
 * runs as an i386 process (its own code segment, the kernel's compat entry) and enters the
 * kernel through `int $0x80`, as 32-bit programs do. Prints one `name=result` line per call
 * (the return value or -errno), `alive=1` last if it survived, and exits 0. */

static long sys(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

static unsigned long len(const char *s) {
    unsigned long n = 0;
    while (s[n]) n++;
    return n;
}

/* Writes `name=value\n` to stdout. */
static void show(const char *name, long value) {
    char buf[64];
    int i = sizeof buf;
    unsigned long v = value < 0 ? -(unsigned long)value : (unsigned long)value;
    buf[--i] = '\n';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (value < 0) buf[--i] = '-';
    buf[--i] = '=';
    sys(4, 1, (long)name, (long)len(name));
    sys(4, 1, (long)(buf + i), (long)(sizeof buf - i));
}

void _start(void) {
    show("pid", sys(20, 0, 0, 0));                                 /* getpid */
    show("uid", sys(199, 0, 0, 0));                                /* getuid32 */
    show("keyctl", sys(288, 0, -3, 0));                            /* keyctl(GET_KEYRING_ID, session) */
    show("mount", sys(21, 0, 0, 0));                               /* mount */
    show("bpf", sys(357, 0, 0, 0));                                /* bpf */
    show("perf_event_open", sys(336, 0, 0, 0));                    /* perf_event_open */
    show("socket_vsock", sys(359, 40, 1, 0));                      /* socket(AF_VSOCK) */
    show("unshare_newuser", sys(310, 0x10000000, 0, 0));           /* unshare(CLONE_NEWUSER), last */
    show("alive", 1);
    sys(1, 0, 0, 0);                                               /* exit(0) */
    for (;;) {
    }
}
