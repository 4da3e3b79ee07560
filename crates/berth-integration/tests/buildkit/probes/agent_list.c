/* Asks the SSH agent at $SSH_AUTH_SOCK for its identities (SSH_AGENTC_REQUEST_IDENTITIES)
 * and prints each key's comment on a line: what `ssh-add -l` shows, without needing an
 * SSH client in the image. Exit 2 when there is no agent to reach. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_full(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int main(void) {
    const char *path = getenv("SSH_AUTH_SOCK");
    if (!path) { fprintf(stderr, "SSH_AUTH_SOCK is not set\n"); return 2; }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    const unsigned char req[5] = { 0, 0, 0, 1, 11 };
    if (write(fd, req, sizeof req) != sizeof req) { perror("write"); return 1; }
    unsigned char hdr[4];
    if (read_full(fd, hdr, 4) != 0) { fprintf(stderr, "no answer\n"); return 1; }
    uint32_t len = be32(hdr);
    if (len < 5 || len > (1 << 20)) { fprintf(stderr, "bad length %u\n", len); return 1; }
    unsigned char *body = malloc(len);
    if (read_full(fd, body, len) != 0 || body[0] != 12) { fprintf(stderr, "bad answer\n"); return 1; }
    uint32_t n = be32(body + 1), at = 5;
    for (uint32_t i = 0; i < n; i++) {
        if (at + 4 > len) return 1;
        at += 4 + be32(body + at); /* the key blob */
        if (at + 4 > len) return 1;
        uint32_t clen = be32(body + at);
        if (at + 4 + clen > len) return 1;
        printf("%.*s\n", (int)clen, (const char *)body + at + 4);
        at += 4 + clen;
    }
    return 0;
}
