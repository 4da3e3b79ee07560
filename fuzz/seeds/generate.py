#!/usr/bin/env python3
"""Writes the hand-made seed inputs under fuzz/seeds/<target>/ (committed; rerun after
editing). Seeds only give the fuzzer a head start; scripts/fuzz.sh also feeds it the
Dockerfile parser's golden test cases. Usage: python3 fuzz/seeds/generate.py"""

import io
import os
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
H64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sel(n, text):
    """A selector byte followed by the text, for the multi-parser targets."""
    return bytes([n]) + (text.encode() if isinstance(text, str) else text)


# dockerfile_parse ---------------------------------------------------------------------
put("dockerfile_parse", "multistage", """# syntax=docker/dockerfile:1
ARG BASE=alpine:3.20
FROM ${BASE} AS build
ENV A=1 B="two words" C=$HOME/x
LABEL a=b "c d"=e
RUN --mount=type=cache,target=/root/.cache \\
    echo hi && \\
    make
COPY --from=build --chown=1:2 --chmod=0755 ["a b", "/dst/"]
ADD --checksum=sha256:%s https://example.com/x /x
WORKDIR ${A:-/w}
USER ${B%%%% *}
EXPOSE 80/tcp 53/udp ${PORT}
VOLUME ["/data"]
HEALTHCHECK --interval=5s --timeout=3s CMD curl -f http://localhost/ || exit 1
ONBUILD RUN echo onbuild
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-c"]
FROM scratch
COPY --from=0 /x /y
ENTRYPOINT ["/y"]
CMD ["--help"]
""" % H64)
put("dockerfile_parse", "heredoc", """FROM alpine
RUN <<EOF
#!/bin/sh
echo "$HOME"
EOF
RUN cat <<-'A' > /a && cat <<B > /b
\tliteral $X
\tA
expanded ${X:+set}
B
COPY <<conf /etc/app.conf
key=${VALUE}
conf
""")
put("dockerfile_parse", "escape", """# escape=`
FROM mcr.microsoft.com/windows
RUN dir c:\\ `
    && echo done
COPY . C:\\app\\
""")

# dockerignore ---------------------------------------------------------------------------
put("dockerignore", "patterns", "# comment\n*.o\n!keep.o\nbuild/\n**/node_modules\n/abs/**/x?\n[a-c]*.tmp\n!**/[^x]*.md\n\\#lit\n"
    "\x00a/b/c\nbuild/x.o\nkeep.o\nsrc/node_modules/m/i.js\nabs/p/q/xy\nb.tmp\ndocs/README.md\n")

# tar_reader / tar_apply -------------------------------------------------------------------


def tar(entries, fmt=tarfile.PAX_FORMAT, trailer=True):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    # Without tarfile's padding to a 10 KiB record: smaller seeds mutate faster.
    b = buf.getvalue().rstrip(b"\0")
    b += b"\0" * ((512 - len(b) % 512) % 512)
    return b + b"\0" * 1024 if trailer else b


def ti(name, kind=tarfile.REGTYPE, size=0, link="", mode=0o644, pax=None):
    i = tarfile.TarInfo(name)
    i.type, i.size, i.linkname, i.mode, i.mtime = kind, size, link, mode, 1_600_000_000
    if pax:
        i.pax_headers = pax
    return i


layer = tar([
    (ti("./", tarfile.DIRTYPE, mode=0o755), None),
    (ti("etc/", tarfile.DIRTYPE, mode=0o755), None),
    (ti("etc/passwd", size=5), b"root\n"),
    (ti("bin/sh", tarfile.SYMTYPE, link="/bin/busybox"), None),
    (ti("etc/pw-link", tarfile.LNKTYPE, link="etc/passwd"), None),
    (ti("run/fifo", tarfile.FIFOTYPE), None),
    (ti("gone/.wh.file", size=0), b""),
    (ti("dir/.wh..wh..opq", size=0), b""),
])
ext = tar([
    (ti("d" * 120 + "/long-name-file", size=3, pax={"SCHILY.xattr.user.k": "v", "mtime": "1600000000.123456789"}), b"abc"),
    (ti("l", tarfile.SYMTYPE, link="t" * 130), None),
], fmt=tarfile.PAX_FORMAT)
gnu = tar([(ti("g" * 150, size=2), b"hi")], fmt=tarfile.GNU_FORMAT, trailer=False)
escape = tar([
    (ti("a", tarfile.SYMTYPE, link="../../outside"), None),
    (ti("b", tarfile.SYMTYPE, link="/"), None),
    (ti("b/etc/x", size=1), b"x"),
    (ti("c/../../x", size=1), b"x"),
    (ti("dev", tarfile.CHRTYPE), None),
])
for target in ("tar_reader", "tar_apply"):
    put(target, "layer.tar", layer)
    put(target, "extensions.tar", ext)
    put(target, "gnu-no-trailer.tar", gnu)
    put(target, "escapes.tar", escape)

# layer_skeleton (the body before compression: R<varint len><bytes> | F<varint len><path><varint size>)
put("layer_skeleton", "segments", b"R\x05hello" + b"F\x0aetc/passwd\x80\x02" + b"R\x00")

# api_json: selector byte = model (see the target) --------------------------------------------
put("api_json", "create", sel(0, """{"Hostname":"h","Env":["A=1",null],"Cmd":"sh","Entrypoint":null,"Image":"alpine",
"ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},
"Labels":{"a":"b"},"StopTimeout":10,"HostConfig":{"Binds":["/a:/b:ro"],"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"NoCopy":true}}],
"Memory":1048576,"Ulimits":[{"Name":"nofile","Soft":1,"Hard":2}],"ConsoleSize":[24,80],"Sysctls":{"net.ipv4.ip_forward":"1"}},
"NetworkingConfig":{"EndpointsConfig":{"n":{"Aliases":["x"],"IPAMConfig":{"IPv4Address":"10.0.0.2"}}}}}"""))
put("api_json", "network", sel(7, """{"Name":"n","Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.0.0/16","IPRange":"10.1.1.0/24","Gateway":"10.1.0.1","AuxiliaryAddresses":{"a":"10.1.0.5"}}]},"EnableIPv6":false,"Options":null,"Labels":{}}"""))
put("api_json", "exec", sel(10, """{"AttachStdout":true,"Cmd":["sh","-c","echo"],"detachKeys":"ctrl-p","Env":null}"""))
put("api_json", "update", sel(9, """{"Memory":1,"RestartPolicy":{"Name":"always"},"BlkioWeight":300}"""))
put("api_json", "filters", sel(13, """{"status":["running"],"label":{"a=b":true},"name":"x"}"""))

# api_args ---------------------------------------------------------------------------------
put("api_args", "time", sel(0, "2026-11-28T17:56:14.5+01:00"))
put("api_args", "duration", sel(0, "1h30m10.5s"))
put("api_args", "unix", sel(0, "1700000000.123"))
put("api_args", "ram", sel(1, "1.5GiB"))
put("api_args", "name", sel(2, "/web_1.a-b"))
put("api_args", "frames", sel(3, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n\x02\x00\x00\x00\x00\x00\x00\x01!"))

# image_reference ---------------------------------------------------------------------------
for i, r in enumerate(["busybox", "library/busybox:1.36", "localhost:5000/team/app:1.0",
                       "docker.io/library/alpine@sha256:" + H64, "[::1]:5000/a/b__c.d-e:tag_1",
                       "index.docker.io/user/app", "my.registry/a/b/c:x@sha256:" + H64]):
    put("image_reference", f"ref{i}", r)

# registry_names: selector 0 name, 1 tag, 2 reference, 3 scope, 4 tokens/basic, 5 manifest -----
put("registry_names", "name", sel(0, "team/app.v2__x---y"))
put("registry_names", "tag", sel(1, "v1.0-rc_1"))
put("registry_names", "digest", sel(2, "sha256:" + H64))
put("registry_names", "scope", sel(3, "repository:team/app:pull,push"))
put("registry_names", "token", sel(4, "alice\nrepository:a:pull\nregistry:catalog:*"))
put("registry_names", "basic", sel(4, "Basic YWxpY2U6c2VjcmV0"))
put("registry_names", "manifest", sel(5, "application/vnd.oci.image.manifest.v1+json\n"
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
    '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":2},'
    '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":1}],'
    '"subject":{"digest":"sha256:%s","size":3}}' % (H64, H64, H64)))
put("registry_names", "index", sel(5, '{"schemaVersion":2,"manifests":[{"digest":"sha512:%s","size":1}]}' % (H64 + H64)))

# registry_http: selector 0 GET range, 1 GET range (empty blob), 2 PATCH, 3 GET path, 4 HEAD path
for i, r in enumerate(["bytes=0-99", "bytes=500-", "bytes=-10", "bytes=0-1,5-6", "bytes=999-5000"]):
    put("registry_http", f"range{i}", sel(0, r))
put("registry_http", "range-empty", sel(1, "bytes=0-0"))
put("registry_http", "patch", sel(2, "bytes 0-4/*\nhello"))
put("registry_http", "patch-bare", sel(2, "0-2\nabc"))
put("registry_http", "catalog", sel(3, "/v2/_catalog?n=10&last=a"))
put("registry_http", "tags", sel(3, "/v2/fuzz/repo/tags/list?n=1"))
put("registry_http", "manifest", sel(4, "/v2/fuzz/repo/manifests/latest"))
put("registry_http", "blob", sel(3, "/v2/fuzz/repo/blobs/sha256:" + H64))
put("registry_http", "referrers", sel(3, "/v2/fuzz/repo/referrers/sha256:" + H64 + "?artifactType=x"))
put("registry_http", "search", sel(3, "/v1/search?q=fuzz&n=5&page=1"))

# seccomp_profile: selector (bounding set), then a profile's JSON --------------------------------
import json
import struct

put("seccomp_profile", "profile", b"\x01" + json.dumps({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"], "minKernel": "4.8"}},
        {"name": "kill", "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}).encode())
put("seccomp_profile", "archmap", b"\x02" + json.dumps({
    "defaultAction": "SCMP_ACT_KILL_PROCESS",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}).encode())


# buildkit_grpc / buildkit_fsutil: protobuf by hand ---------------------------------------------
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def field(num, payload):
    """A field: bytes are length-delimited, ints are varints."""
    if isinstance(payload, bytes):
        return varint(num << 3 | 2) + varint(len(payload)) + payload
    return varint(num << 3) + varint(payload)


def frame(m):
    return b"\0" + struct.pack(">I", len(m)) + m


def stat(path, mode, size=0, link=b""):
    return field(1, path) + field(2, mode) + (field(5, size) if size else b"") + (field(7, link) if link else b"")


def packet(kind, st=None, ident=0, data=b""):
    return ((field(1, kind) if kind else b"") + (field(2, st) if st is not None else b"")
            + (field(3, ident) if ident else b"") + (field(4, data) if data else b""))


DIR, LINK = 1 << 31, 1 << 27
solve = (field(1, b"ref1") + field(5, b"sess") + field(6, b"dockerfile.v0")
         + field(7, field(1, b"target") + field(2, b"a")))
put("buildkit_grpc", "solve", b"\x00\x07" + frame(solve) + frame(field(1, b"r")))
put("buildkit_grpc", "packets",
    b"\x07\x03" + frame(packet(0, stat(b"a", DIR | 0o755))) + frame(packet(2, None, 1, b"hi")))
tree = [packet(0, stat(b"a", DIR | 0o755)), packet(0, stat(b"a/f", 0o644, 5)),
        packet(0, stat(b"a/l", LINK | 0o777, 0, b"../../outside")), packet(0, stat(b"a/h", 0o644, 0, b"a/f")),
        packet(0, None), packet(2, None, 1, b"hello"), packet(2, None, 1), packet(3)]
put("buildkit_fsutil", "tree", b"".join(struct.pack(">H", len(p)) + p for p in tree))
put("buildkit_fsutil", "escape", b"".join(struct.pack(">H", len(p)) + p for p in [
    packet(0, stat(b"link", DIR | 0o755)), packet(0, stat(b"link/canary", 0o644, 1)), packet(0, None),
    packet(2, None, 1, b"x"), packet(2, None, 1), packet(3)]))
