/* Tries the socket families a container must not open: AF_VSOCK (40) as the C library
 * passes it, and with junk in the upper half of the register (the kernel reads an int).
 * Prints the errno of each (0 when it opened), then AF_UNIX's as the control. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int try(long family) {
    long fd = syscall(SYS_socket, family, (long)SOCK_STREAM, 0L);
    if (fd < 0) return errno;
    close((int)fd);
    return 0;
}

int main(void) {
    printf("vsock=%d vsock_high=%d unix=%d\n", try(40), try(0x100000000L | 40), try(AF_UNIX));
    return 0;
}
