/* Runs inside a container as an attacker would: watches for every new process in its pid
 * namespace (ns_last_pid) and, the moment one appears, tries to reach the host through it.
 *
 *   race HOST_MARKER CTR_MARKER STOP_FILE [MAX_SEEN]
 *
 * For each new pid P it tries
 *   - /proc/P/root/HOST_MARKER and /proc/P/cwd/HOST_MARKER (a file only the host has);
 *   - /proc/P/exe: opened, it must be a file of the container (same device as CTR_MARKER's
 *     filesystem) or, for a container joining the pid namespace, the file at the same path
 *     under P's own root ("exe_other"), and opening it for writing must fail;
 *   - every descriptor >= 3 through /proc/P/fd/N and pidfd_getfd;
 *   - /proc/P/status: no seccomp filter while the prober has one, or capabilities beyond
 *     the prober's own bounding set without a filter (visible before it is confined:
 *     "unconfined"); capabilities beyond that set under a filter are counted apart
 *     ("privileged": the runtime's /proc maker for a joined pid namespace is one).
 *   - every descriptor it takes: a filesystem context it can turn into a mount, or a
 *     procfs whose /proc/sys it can open for writing ("mount");
 * Controls, proving the probe reaches its targets: how many new pids it saw, how often
 * /proc/P/root/CTR_MARKER opened (the container's root through the same path), and how
 * often pidfd_getfd took descriptor 0..2 (the mechanism works on a reachable process).
 * Runs until STOP_FILE exists (or it has seen MAX_SEEN processes), then prints one line of
 * counts and the first hits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The first few hits of each kind, so a rare kind is not crowded out by a frequent one. */
static char hits[8192];
static struct { const char *what; int n; } kinds[16];
static void note(const char *what, int pid, const char *detail) {
    int k = 0;
    while (k < 15 && kinds[k].what && strcmp(kinds[k].what, what) != 0) k++;
    kinds[k].what = what;
    if (kinds[k].n++ >= 3) return;
    size_t n = strlen(hits);
    if (n < sizeof(hits) - 600)
        snprintf(hits + n, sizeof(hits) - n, " [%s pid=%d %.500s]", what, pid, detail);
}

/* Opens PATH as if ROOT were "/" (symlinks included): a file under a process's root. */
static int in_root(int root, const char *path) {
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
    return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

/* Whether the process behind PIDFD is ending: it is readable within a second. (An exiting
 * process gives up its root before its pidfd turns readable.) */
static int ending(int pidfd) {
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return pidfd >= 0 && poll(&p, 1, 1000) == 1 && (p.revents & POLLIN);
}

static unsigned long long status_field(const char *buf, const char *key, int hex) {
    const char *p = strstr(buf, key);
    if (!p) return 0;
    return strtoull(p + strlen(key), NULL, hex ? 16 : 10);
}

static int read_file(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    const char *host_marker = argv[1], *ctr_marker = argv[2], *stop = argv[3];
    long max_seen = argc > 4 ? atol(argv[4]) : 0;
    char self[8192];
    if (read_file("/proc/self/status", self, sizeof self) < 0) return 3;
    unsigned long long my_bnd = status_field(self, "CapBnd:\t", 1);
    unsigned long long my_seccomp = status_field(self, "Seccomp:\t", 0);
    struct stat ctr;
    if (stat(ctr_marker, &ctr) < 0) return 4;

    long mounts = 0;
    long seen = 0, root_ctr = 0, root_host = 0, exe_host = 0, exe_other = 0, exe_gone = 0, exe_write = 0, fd_hits = 0;
    long getfd_std = 0, unconfined = 0, priv = 0;
    int last = -1;
    char path[512], buf[8192], link[512];
    while (access(stop, F_OK) != 0 && (max_seen == 0 || seen < max_seen)) {
        if (read_file("/proc/sys/kernel/ns_last_pid", buf, 32) < 0) return 5;
        int top = atoi(buf);
        if (top == last) continue;
        int from = last < 0 || top < last || top - last > 64 ? top : last + 1;
        last = top;
        for (int pid = from; pid <= top; pid++) {
            if (pid == getpid()) continue;
            /* Capabilities and seccomp first: the window, if any, is at the start. */
            snprintf(path, sizeof path, "/proc/%d/status", pid);
            if (read_file(path, buf, sizeof buf) < 0) continue;
            seen++;
            unsigned long long eff = status_field(buf, "CapEff:\t", 1);
            unsigned long long sc = status_field(buf, "Seccomp:\t", 0);
            char who[160];
            {
                const char *name = strstr(buf, "Name:\t");
                int len = 0;
                if (name) { name += 6; while (name[len] && name[len] != '\n' && len < 32) len++; }
                snprintf(who, sizeof who, "%.*s CapEff=%llx Seccomp=%llu", len, name ? name : "", eff, sc);
            }
            snprintf(link, sizeof link, "%s", who);
            if ((my_seccomp || (eff & ~my_bnd)) && !sc) {
                unconfined++;
                note("unconfined", pid, link);
            } else if (eff & ~my_bnd) {
                priv++;
            }
            snprintf(path, sizeof path, "/proc/%d/root%s", pid, host_marker);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) { root_host++; note("root", pid, host_marker); close(fd); }
            snprintf(path, sizeof path, "/proc/%d/cwd%s", pid, host_marker);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) { root_host++; note("cwd", pid, host_marker); close(fd); }
            snprintf(path, sizeof path, "/proc/%d/root%s", pid, ctr_marker);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) { root_ctr++; close(fd); }
            /* To tell later whether P has ended: a pidfd taken before its exe is opened. */
            int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                struct stat st;
                /* A file of the host: outside the container's filesystem and linked somewhere
                 * (an unlinked memfd copy is nobody's file). */
                if (fstat(fd, &st) == 0 && st.st_dev != ctr.st_dev && st.st_nlink > 0) {
                    /* The opened file's own path, which outlives P (a `true` may exit between
                     * the open and a readlink of /proc/P/exe). */
                    char self_fd[64];
                    snprintf(self_fd, sizeof self_fd, "/proc/self/fd/%d", fd);
                    ssize_t n = readlink(self_fd, link, sizeof link - 1);
                    link[n > 0 ? n : 0] = 0;
                    /* A process of another container sharing the pid namespace (--pid
                     * container:) runs that container's files: an exe that is the file at its
                     * own path under the process's own root is the other container's. The
                     * root is taken after the exe (the same access check let the exe open, so
                     * only P's exit can refuse it) and roots only move from the host's to the
                     * container's: a root that is still the host's is a breach by itself. */
                    snprintf(path, sizeof path, "/proc/%d/root", pid);
                    int rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                    int r = -1;
                    if (rootfd >= 0) {
                        int m = in_root(rootfd, host_marker);
                        if (m >= 0) { root_host++; note("held-root", pid, host_marker); close(m); }
                        else if (link[0] == '/') r = in_root(rootfd, link);
                        close(rootfd);
                    }
                    struct stat rs;
                    if (r >= 0 && fstat(r, &rs) == 0 && rs.st_dev == st.st_dev && rs.st_ino == st.st_ino) {
                        exe_other++;
                    } else if (rootfd < 0 && ending(pidfd)) {
                        /* P exited before its root could be compared: nothing to judge by. */
                        exe_gone++;
                    } else {
                        exe_host++;
                        note("exe", pid, link);
                    }
                    if (r >= 0) close(r);
                }
                close(fd);
            }
            /* Writing: put back the byte that is there, so a success changes nothing. */
            int wfd = open(path, O_RDWR | O_CLOEXEC);
            if (wfd >= 0) {
                char b;
                if (pread(wfd, &b, 1, 0) == 1 && pwrite(wfd, &b, 1, 0) == 1) { exe_write++; note("exe-write", pid, ""); }
                close(wfd);
            }
            for (int n = 0; n < 64; n++) {
                if (n >= 3) {
                    snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, n);
                    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                    if (f >= 0) {
                        ssize_t k = readlink(path, link, sizeof link - 1);
                        link[k > 0 ? k : 0] = 0;
                        /* The test's own `touch <stop>` (a confined exec) holds that file. */
                        if (strcmp(link, stop) != 0) {
                            fd_hits++;
                            char d[800];
                            snprintf(d, sizeof d, "fd %d %s (%s)", n, link, who);
                            note("fd", pid, d);
                        }
                        close(f);
                    }
                }
                if (pidfd >= 0) {
                    int g = (int)syscall(SYS_pidfd_getfd, pidfd, n, 0);
                    if (g >= 0) {
                        /* A stolen mount context or procfs: can it be used against the host? */
                        if (syscall(SYS_fsconfig, g, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) == 0) {
                            int m = (int)syscall(SYS_fsmount, g, 0, 0);
                            if (m >= 0) { mounts++; note("mount", pid, "fsmount of a stolen context"); close(m); }
                        }
                        int ks = openat(g, "sys/kernel/core_pattern", O_WRONLY | O_CLOEXEC);
                        if (ks >= 0) { mounts++; note("mount", pid, "core_pattern through a stolen procfs"); close(ks); }
                        if (n < 3) getfd_std++;
                        else {
                            snprintf(path, sizeof path, "/proc/self/fd/%d", g);
                            ssize_t k = readlink(path, link, sizeof link - 1);
                            link[k > 0 ? k : 0] = 0;
                            if (strcmp(link, stop) != 0) {
                                fd_hits++;
                                char d[800];
                                snprintf(d, sizeof d, "fd %d %s (%s)", n, link, who);
                                note("getfd", pid, d);
                            }
                        }
                        close(g);
                    }
                }
            }
            if (pidfd >= 0) close(pidfd);
        }
    }
    printf("seen=%ld root_ctr=%ld getfd_std=%ld root_host=%ld exe_host=%ld exe_other=%ld exe_gone=%ld exe_write=%ld fd=%ld "
           "unconfined=%ld privileged=%ld mount=%ld hits:%s\n",
           seen, root_ctr, getfd_std, root_host, exe_host, exe_other, exe_gone, exe_write, fd_hits, unconfined, priv, mounts,
           hits);
    fflush(stdout);
    return 0;
}
