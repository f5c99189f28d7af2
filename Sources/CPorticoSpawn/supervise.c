#define _GNU_SOURCE
#include "CPorticoSpawn.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// The per-worker supervisor: the gateway starts every worker, exec process and build through
// it (see `portico_spawn` with a control pipe). It is the small `portico-supervise` program
// installed beside the gateway (Sources/portico-supervise), or, where that is missing, the
// gateway's own binary run again through /proc/self/exe with argv[0] "portico-supervise": a
// constructor below then does the whole job before any Swift code runs.
//
// Why a process of its own: PR_SET_PDEATHSIG reaches only a direct child, so a worker's own
// children (a shell script that starts python without exec, a `setsid` daemon) outlived a
// gateway killed with SIGKILL. The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER):
// whatever the worker starts stays its descendant even after its parent exits or it calls
// setsid, so it can always find and kill all of it. It holds the read end of a pipe whose
// write end only the gateway holds; the kernel closes that end however the gateway dies, and
// then the supervisor kills every descendant and exits. The gateway also closes it on purpose
// to kill a worker outright.
//
// argv: portico-supervise MEMORY_LIMIT OPEN_FILES_LIMIT READY_PORT PATH ARGV0 ARGS...
// (fd 3: the control pipe; fd 4, when READY_PORT is not 0: the readiness socket)

static const char supervisor_name[] = "portico-supervise";
enum { control_fd = 3, ready_fd = 4 };

// Readiness. A worker is ready when its port on 127.0.0.1 accepts a connection, and nothing
// announces that: someone has to try. When the gateway tried (a probe every 200 us on its event
// loop), each try woke the gateway on the core the worker was starting on, often the same core:
// a cold start paid for the gateway's wake-ups, and an interpreter's start for being preempted
// by them. Here the supervisor tries, between its other work, and sends one datagram to the
// gateway when the port accepts. While it tries it runs as SCHED_BATCH: its wake-ups never
// preempt the starting worker (it waits for the worker's time slice to end), and it runs at
// once when the worker blocks, which is what a worker that is done starting does (in accept).
// It returns to the normal policy once it has reported. (A thread at SCHED_IDLE did the same
// and cost a cold start a tenth of a millisecond more to create; and an unprivileged process
// cannot leave SCHED_IDLE.)

/// The socket of the last refused probe. Linux lets a TCP socket whose connect was refused
/// connect again, which spares each further probe three of its four system calls.
static int refused_socket = -1;

/// A connection to 127.0.0.1:port (its descriptor) if the port accepts one; -1 if it refuses,
/// -2 if it cannot tell.
static int connect_to_port(int port) {
    int fd = refused_socket;
    refused_socket = -1;
    if (fd < 0) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -2;
        // A refusal on loopback is immediate; only a listener with a full backlog (the SYN
        // dropped) could keep a blocking connect waiting, and the send timeout bounds that.
        struct timeval bound = {0, 2000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound));
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0) return fd;
    if (errno == ECONNREFUSED) {
        refused_socket = fd;
        return -1;
    }
    // A connect cut short by the timeout goes on in the background: never reused.
    close(fd);
    return -2;
}

// The connection that found the worker ready is the gateway's first connection to it: the
// gateway takes a copy (pidfd_getfd, the descriptor's number is in the report) and writes a
// byte on the control pipe once it has, and this copy is closed then, or after
// `held_limit_us` if no byte comes (a worker that serves one connection at a time waits on it
// meanwhile). Otherwise the worker would first accept a connection that only closes, and the
// gateway open another: for a Python server, a thread started for nothing while the request
// waits. A byte that comes before the probe succeeds (the gateway's own probe found the worker
// first) means the connection is not wanted.
static int held_connection = -1;
static int connection_unwanted = 0;
static const long long held_limit_us = 500000;

static long long monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000LL + now.tv_nsec / 1000;
}

static void set_policy(int policy) {
    struct sched_param none = {0};
    sched_setscheduler(0, policy, &none);
}

/// Probes once; reports and returns 1 when the port accepts (and holds the connection).
/// Otherwise returns 0 and sets `*wait_us` to the time until the next probe: 50 us while a
/// native worker could be starting, then slower.
static int probe_once(int port, long long started_us, long long *wait_us) {
    int connection = connect_to_port(port);
    if (connection >= 0) {
        if (connection_unwanted) {
            close(connection);
            connection = -1;
        }
        held_connection = connection;
        struct portico_ready_report report = {port, (int)getpid(), connection};
        ssize_t ignored = send(ready_fd, &report, sizeof(report), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)ignored;
        return 1;
    }
    long long elapsed = monotonic_us() - started_us;
    *wait_us = elapsed < 20000 ? 50 : elapsed < 2000000 ? 500 : 10000;
    return 0;
}

/// Fills `out` with up to `capacity` children of this (single-threaded) process; returns how
/// many. `/proc/self/task/PID/children` is one read; scanning every process in /proc is the
/// fallback for kernels built without it, and costs milliseconds on a busy machine.
static int children_of(pid_t parent, pid_t *out, int capacity) {
    char list_path[64];
    snprintf(list_path, sizeof(list_path), "/proc/self/task/%ld/children", (long)parent);
    int list = open(list_path, O_RDONLY | O_CLOEXEC);
    if (list >= 0) {
        char text[4096];
        ssize_t length = read(list, text, sizeof(text) - 1);
        close(list);
        if (length >= 0) {
            text[length] = '\0';
            int count = 0;
            char *cursor = text;
            while (count < capacity) {
                char *end;
                long pid = strtol(cursor, &end, 10);
                if (end == cursor) break;
                if (pid > 0) out[count++] = (pid_t)pid;
                cursor = end;
            }
            return count;
        }
    }
    DIR *proc = opendir("/proc");
    if (proc == NULL) return 0;
    int count = 0;
    struct dirent *entry;
    char path[64];
    char stat[512];
    while (count < capacity && (entry = readdir(proc)) != NULL) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t length = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (length <= 0) continue;
        stat[length] = '\0';
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
        char *close_paren = strrchr(stat, ')');
        if (close_paren == NULL) continue;
        char state;
        long ppid;
        if (sscanf(close_paren + 1, " %c %ld", &state, &ppid) != 2) continue;
        if (ppid == parent) out[count++] = (pid_t)pid;
    }
    closedir(proc);
    return count;
}

/// SIGKILLs every descendant and reaps it. Each death re-parents the dead process's children
/// to this subreaper, so killing children until none is left reaches every generation.
/// Records the worker's status in `worker_status` if it is reaped here.
static void kill_descendants(pid_t worker, int *worker_status, int *worker_reaped) {
    pid_t self = getpid();
    for (;;) {
        pid_t children[256];
        int count = children_of(self, children, 256);
        for (int i = 0; i < count; i++) kill(children[i], SIGKILL);
        int status;
        pid_t reaped = waitpid(-1, &status, 0);
        if (reaped < 0) {
            if (errno == EINTR) continue;
            break;  // ECHILD: nothing left
        }
        if (reaped == worker && !*worker_reaped) {
            *worker_status = status;
            *worker_reaped = 1;
        }
    }
}

/// Ends the supervisor the way the worker ended, so the gateway sees the worker's own exit.
static void exit_like(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        kill(getpid(), sig);
        _exit(128 + sig);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static void do_nothing(int signal) { (void)signal; }

int portico_supervise_main(int argc, char **argv, char **envp) {
    if (argc < 6 || strcmp(argv[0], supervisor_name) != 0) {
        dprintf(2, "portico-supervise: started by the gateway only\n");
        return 125;
    }
    long long memory_limit = atoll(argv[1]);
    long long open_files_limit = atoll(argv[2]);
    int ready_port = atoi(argv[3]);
    const char *path = argv[4];
    char **worker_argv = argv + 5;

    // The spawner set PDEATHSIG so that nothing lingers if the gateway died during the spawn;
    // the supervisor must outlive the gateway long enough to clean up, so it clears it.
    prctl(PR_SET_PDEATHSIG, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    fcntl(control_fd, F_SETFD, FD_CLOEXEC);
    if (ready_port > 0) fcntl(ready_fd, F_SETFD, FD_CLOEXEC);

    // The gateway stops a worker with SIGTERM to the process group, which holds this
    // supervisor too: only the worker is meant to act on it. The worker gets the defaults back.
    // Until it has them, those signals are held (blocked) rather than only ignored: an ignored
    // signal is dropped on arrival, so a stop sent before the fork, or after it but before the
    // worker had reset its dispositions, was lost. A blocked signal stays pending; a group
    // signal sent during the fork reaches the child too.
    int stop_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    sigset_t held;
    sigemptyset(&held);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) sigaddset(&held, stop_signals[i]);
    sigprocmask(SIG_BLOCK, &held, NULL);
    // Caught by a handler that does nothing rather than set to SIG_IGN: setting SIG_IGN
    // discards a signal already pending, and a supervisor forked by the spawner holds these
    // from its first instruction, so a stop the gateway sent at once would be pending here.
    struct sigaction nothing;
    memset(&nothing, 0, sizeof(nothing));
    nothing.sa_handler = do_nothing;
    nothing.sa_flags = SA_RESTART;
    sigfillset(&nothing.sa_mask);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) sigaction(stop_signals[i], &nothing, NULL);
    signal(SIGPIPE, SIG_IGN);
    int ignored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE};
    sigset_t child_signal, previous;
    sigemptyset(&child_signal);
    sigaddset(&child_signal, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child_signal, &previous);
    int child_events = signalfd(-1, &child_signal, SFD_CLOEXEC | SFD_NONBLOCK);

    // A stop that came already is for a worker that has not started: end as it would have.
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
        if (sigismember(&pending, stop_signals[i])) exit_like(stop_signals[i] & 0x7f);
    }

    pid_t self = getpid();
    // vfork: a fork would copy the page tables of the spawner's image only for exec to drop
    // them. The child until exec makes system calls only (its signal dispositions are its own
    // copy), and this process is single-threaded.
    pid_t worker = vfork();
    if (worker < 0) _exit(127);
    if (worker == 0) {
        // If the supervisor itself is killed, the worker goes with it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self) _exit(126);
        for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) signal(ignored[i], SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        // Limits apply to the worker only: the supervisor is the gateway's binary, whose mapped
        // size alone could exceed a small RLIMIT_AS.
        if (memory_limit > 0) {
            struct rlimit limit = {(rlim_t)memory_limit, (rlim_t)memory_limit};
            if (setrlimit(RLIMIT_AS, &limit) != 0) {
                dprintf(2, "portico: cannot set the memory limit: %s\n", strerror(errno));
                _exit(127);
            }
        }
        if (open_files_limit > 0) {
            struct rlimit limit = {(rlim_t)open_files_limit, (rlim_t)open_files_limit};
            if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
                dprintf(2, "portico: cannot set the open files limit: %s\n", strerror(errno));
                _exit(127);
            }
        }
        execve(path, worker_argv, envp);
        dprintf(2, "portico: cannot start %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    // A stop sent to the group while the fork was under way, before the kernel had put the
    // worker in the group, reached this process only (it was held here, so the fork did not
    // restart for it): seen first in CI, once in 40 stops sent right after a spawn. Any stop
    // pending here now is passed on to the worker. One sent after the worker joined the group
    // reached it too, and it dies of it before its exec (it unblocks with the defaults); only
    // one sent in the microseconds between its unblocking and this check reaches it twice.
    sigemptyset(&pending);
    sigpending(&pending);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
        if (sigismember(&pending, stop_signals[i])) kill(worker, stop_signals[i]);
    }
    // The copies held here are dropped by the handler that does nothing.
    sigprocmask(SIG_UNBLOCK, &held, NULL);
    int probing = ready_port > 0;
    long long probe_started_us = 0;
    long long probe_wait_us = 0;
    if (probing) {
        set_policy(SCHED_BATCH);
        prctl(PR_SET_TIMERSLACK, 1UL);  // the default 50 us slack would double the interval
        probe_started_us = monotonic_us();
    }

    int worker_status = 0;
    int worker_reaped = 0;
    long long held_since_us = 0;
    // Not at once: the worker has only just been exec'd (vfork returns then), and cannot be
    // listening yet. The first probe comes when the worker first blocks, or after one interval.
    int probe_now = 0;
    probe_wait_us = 50;
    struct pollfd fds[2] = {{.fd = control_fd, .events = POLLIN}, {.fd = child_events, .events = POLLIN}};
    while (!worker_reaped) {
        fds[0].revents = 0;
        fds[1].revents = 0;
        if (probing && probe_now && probe_once(ready_port, probe_started_us, &probe_wait_us)) {
            probing = 0;
            set_policy(SCHED_OTHER);
            held_since_us = monotonic_us();
        }
        probe_now = 1;
        long long held_left_us = held_connection >= 0 ? held_limit_us - (monotonic_us() - held_since_us) : 0;
        if (held_connection >= 0 && held_left_us <= 0) {
            close(held_connection);
            held_connection = -1;
        }
        struct timespec timeout = {0, probe_wait_us * 1000};
        struct timespec slow_poll = {0, 100000000};
        struct timespec hold = {held_left_us / 1000000, (held_left_us % 1000000) * 1000};
        if (child_events < 0 && held_left_us > 100000) hold = slow_poll;
        const struct timespec *wait = probing ? &timeout
            : held_connection >= 0 ? &hold : (child_events >= 0 ? NULL : &slow_poll);
        if (ppoll(fds, child_events >= 0 ? 2 : 1, wait, NULL) < 0 && errno != EINTR) break;
        if (child_events >= 0 && (fds[1].revents & POLLIN)) {
            struct signalfd_siginfo info;
            while (read(child_events, &info, sizeof(info)) > 0) {}
        }
        // Reap whatever exited: the worker, or orphans of it re-parented here.
        int status;
        pid_t reaped;
        while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
            if (reaped == worker) {
                worker_status = status;
                worker_reaped = 1;
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char ignored_bytes[64];
            ssize_t got = read(control_fd, ignored_bytes, sizeof(ignored_bytes));
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) break;  // the gateway is gone, or wants it killed
            // A byte: the gateway has its copy of the held connection (or will not take it).
            if (got > 0) {
                if (held_connection >= 0) close(held_connection);
                held_connection = -1;
                connection_unwanted = 1;
            }
        }
    }
    // The worker is gone, or must go: nothing it started may stay.
    kill_descendants(worker, &worker_status, &worker_reaped);
    exit_like(worker_reaped ? worker_status : (SIGKILL & 0x7f));
    return 1;
}

__attribute__((constructor)) static void portico_supervise_if_asked(int argc, char **argv, char **envp) {
    if (argc >= 1 && argv != NULL && argv[0] != NULL && strcmp(argv[0], supervisor_name) == 0) {
        _exit(portico_supervise_main(argc, argv, envp));
    }
    if (argc >= 1 && argv != NULL && argv[0] != NULL && strcmp(argv[0], "portico-spawner") == 0) {
        _exit(portico_spawner_main(argc, argv, envp));
    }
}
