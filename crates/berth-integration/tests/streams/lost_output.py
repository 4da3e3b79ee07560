# Output through docker-py's low-level API, as its users call it: exec_start and attach
# without streaming read the answer through http.client's buffered reader and the stream
# from the socket beneath it. Prints one line per call that did not get all its output.
import os, sys
import docker

rounds = int(sys.argv[1])
c = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="1.45")
hc = c.create_host_config(network_mode="none")
both = ["sh", "-c", "echo out; echo err >&2"]
live = c.create_container("busybox", ["sleep", "1000"], host_config=hc)["Id"]
done = c.create_container("busybox", both, host_config=hc)["Id"]
c.start(live)
c.start(done)
c.wait(done)
bad = 0
for i in range(rounds):
    e = c.exec_create(live, both)["Id"]
    got = c.exec_start(e, demux=True)
    if got != (b"out\n", b"err\n"):
        bad += 1
        print("exec", i, got)
    got = c.attach(done, stream=False, logs=True, demux=True)
    if got != (b"out\n", b"err\n"):
        bad += 1
        print("attach", i, got)
    # The logs of an exited container are complete when wait returns.
    if i % 10 == 0:
        n = c.create_container("busybox", ["sh", "-c", "seq 1 2000; echo end >&2"], host_config=hc)["Id"]
        c.start(n)
        c.wait(n)
        out = c.logs(n, stdout=True, stderr=False)
        err = c.logs(n, stdout=False, stderr=True)
        if out.split() != [str(k).encode() for k in range(1, 2001)] or err != b"end\n":
            bad += 1
            print("logs", i, len(out), err)
        c.remove_container(n)
c.remove_container(live, force=True)
c.remove_container(done)
print("calls that lost output:", bad)
