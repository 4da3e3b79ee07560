/* A 64-bit program calling the kernel through its 32-bit doors, as a container's process
 * would to get around a filter that only knows 64-bit numbers: i386 calls through
 * `int $0x80` (open to any process; arguments in ebx, ecx, edx, esi, edi) and x32 calls
 * (the x32 bit, 0x40000000, on a native number). Prints one `name=result` line per call,
 * the result being the return value or -errno; `alive=1` last, if the process survived.
 *
 *   compat32            every probe
 *   compat32 i386       only an i386 getpid and keyctl (to see an unlisted ABI killed)
 *   compat32 x32        the same through x32
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define X32_BIT 0x40000000L
#define AF_VSOCK_ 40
/* What a 64-bit caller may leave in the high half of a register it hands to int $0x80. */
#define JUNK 0xdeadbeef00000000UL

/* i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl). */
enum {
    I386_GETPID = 20, I386_WRITE = 4, I386_MOUNT = 21, I386_UMOUNT = 22, I386_SOCKETCALL = 102,
    I386_CLONE = 120, I386_KEXEC_LOAD = 283, I386_KEYCTL = 288, I386_UNSHARE = 310,
    I386_PERF_EVENT_OPEN = 336, I386_OPEN_BY_HANDLE_AT = 342, I386_BPF = 357, I386_SOCKET = 359,
    I386_IO_URING_SETUP = 425,
};
/* x86_64 numbers, which x32 shares for these calls. */
enum { X_GETPID = 39, X_MOUNT = 165, X_KEYCTL = 250, X_UNSHARE = 272 };

static long int80(long nr, unsigned long a, unsigned long b, unsigned long c, unsigned long d) {
    long ret;
    /* rbx may hold the compiler's data (PIC), so the first argument is swapped in and out. */
    __asm__ volatile("xchg %%rdi, %%rbx\n\tint $0x80\n\txchg %%rdi, %%rbx"
                     : "=a"(ret), "+D"(a)
                     : "a"(nr), "c"(b), "d"(c), "S"(d)
                     : "memory", "r8", "r9", "r10", "r11");
    return (long)(int)ret; /* eax, sign-extended: -errno on failure */
}

static long x32(long nr, long a, long b, long c) {
    long r = syscall(X32_BIT | nr, a, b, c, 0L, 0L);
    return r < 0 ? -errno : r;
}

static void show(const char *name, long r) {
    printf("%s=%ld\n", name, r);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        show("pid", getpid());
        if (strcmp(argv[1], "i386") == 0) {
            show("i386_getpid", int80(I386_GETPID, 0, 0, 0, 0));
            show("i386_keyctl", int80(I386_KEYCTL, 0, 0xfffffffd, 0, 0));
        } else {
            show("x32_getpid", x32(X_GETPID, 0, 0, 0));
            show("x32_keyctl", x32(X_KEYCTL, 0, -3, 0));
        }
        show("alive", 1);
        return 0;
    }
    /* i386 calls read their memory arguments through 32-bit pointers. */
    unsigned int *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    show("pid", getpid());
    show("i386_getpid", int80(I386_GETPID, 0, 0, 0, 0));
    static const char msg[] = "hello from int 0x80\n";
    memcpy(low + 64, msg, sizeof msg - 1);
    show("i386_write", int80(I386_WRITE, 1, (unsigned long)(low + 64), sizeof msg - 1, 0));
    long fd = int80(I386_SOCKET, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0, 0);
    show("i386_socket_unix", fd);
    if (fd >= 0) close((int)fd);
    fd = int80(I386_SOCKET, AF_VSOCK_, 1, 0, 0);
    show("i386_socket_vsock", fd);
    if (fd >= 0) close((int)fd);
    fd = int80(I386_SOCKET, JUNK | AF_VSOCK_, 1, 0, 0);
    show("i386_socket_vsock_junk", fd);
    if (fd >= 0) close((int)fd);
    /* socketcall(SYS_SOCKET, {family, SOCK_STREAM, 0}): the arguments are in memory. */
    low[0] = 1, low[1] = 1, low[2] = 0;
    fd = int80(I386_SOCKETCALL, 1 /* SYS_SOCKET */, (unsigned long)low, 0, 0);
    show("i386_socketcall_unix", fd);
    if (fd >= 0) close((int)fd);
    low[0] = AF_VSOCK_;
    fd = int80(I386_SOCKETCALL, 1, (unsigned long)low, 0, 0);
    show("i386_socketcall_vsock", fd);
    if (fd >= 0) close((int)fd);
    /* socketcall(SYS_SOCKETPAIR, {AF_UNIX, SOCK_STREAM, 0, sv}): other socket calls go through. */
    {
        /* Arguments and result in the page below 4 GiB, where i386 pointers reach. */
        unsigned int *pair = low + 8, *sv = low + 16;
        pair[0] = 1, pair[1] = 1, pair[2] = 0, pair[3] = (unsigned int)(unsigned long)sv;
        long r = int80(I386_SOCKETCALL, 8 /* SYS_SOCKETPAIR */, (unsigned long)pair, 0, 0);
        show("i386_socketcall_socketpair", r);
        if (r == 0) close((int)sv[0]), close((int)sv[1]);
    }
    show("i386_keyctl", int80(I386_KEYCTL, 0 /* GET_KEYRING_ID */, 0xfffffffd /* session */, 0, 0));
    show("i386_mount", int80(I386_MOUNT, 0, 0, 0, 0));
    show("i386_umount", int80(I386_UMOUNT, 0, 0, 0, 0));
    show("i386_bpf", int80(I386_BPF, 0, 0, 0, 0));
    show("i386_perf_event_open", int80(I386_PERF_EVENT_OPEN, 0, 0, 0, 0));
    show("i386_open_by_handle_at", int80(I386_OPEN_BY_HANDLE_AT, 0, 0, 0, 0));
    show("i386_kexec_load", int80(I386_KEXEC_LOAD, 0, 0, 0, 0));
    show("i386_io_uring_setup", int80(I386_IO_URING_SETUP, 1, (unsigned long)(low + 256), 0, 0));
    /* clone(CLONE_NEWUSER | SIGCHLD): a child, if allowed, returns here with 0 and leaves. */
    long pid = int80(I386_CLONE, 0x10000000 | 17, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((int)pid, NULL, 0);
    show("i386_clone_newuser", pid);
    show("x32_getpid", x32(X_GETPID, 0, 0, 0));
    show("x32_keyctl", x32(X_KEYCTL, 0, -3, 0));
    show("x32_mount", x32(X_MOUNT, 0, 0, 0));
    /* Last: it moves this process into a new user namespace when it is allowed. */
    show("x32_unshare_newuser", x32(X_UNSHARE, 0x10000000, 0, 0));
    show("i386_unshare_newuser", int80(I386_UNSHARE, 0x10000000, 0, 0, 0));
    show("alive", 1);
    return 0;
}
