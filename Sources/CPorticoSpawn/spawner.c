#define _GNU_SOURCE
#include "CPorticoSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// The spawner: a small process the gateway starts once, which forks a supervisor for every
// spawn instead of the gateway exec'ing one. An exec is the dearest part of starting a worker
// (a fresh address space, the binary's pages faulted in again, its start-up code run again),
// and the supervisor's exec was a third of a native cold start. A fork of the spawner, a
// process whose pages are all in place, costs a fraction of that.
//
// The supervisor must still be the gateway's child: the gateway reaps it, learns the worker's
// exit from it, and tells its supervisors from orphans by pid. So the spawner forks with
// CLONE_PARENT, which gives the new process the spawner's parent, the gateway, as its own.
//
// The gateway talks to it over a SOCK_SEQPACKET socket (fd 3): one request per spawn (the
// supervisor's argv and envp, the directory, and its descriptors as SCM_RIGHTS), one reply
// (the pid, or an errno). It ends when the gateway's end closes, however the gateway ends.
//
// A spare. Even a fork (and the copy-on-write faults after it, in both processes) costs a
// cold start about 0.2 ms on the core the worker is about to start on. So, when the gateway
// asks for one (a `prefork` request, sent once a start is over and spawns are quiet), the
// spawner forks a supervisor ahead of time: it is in its own process group with the stop
// signals held, as every new supervisor is, and waits on a socket of its own. A spawn then
// only passes its request on to the spare, whose pid is already the gateway's to know, and
// answers at once. With no spare (two spawns in a row), it forks as before. A spare found
// gone (killed from outside), by a spawn or a prefork, is named in that reply for the gateway
// to reap; a spare ends by itself when the spawner does.

static const char spawner_name[] = "portico-spawner";
enum { spawner_socket = 3, max_request = 256 * 1024, max_fds = 5 };

enum { has_stdin = 1, has_ready = 2, is_prefork = 4 };

struct spawn_request {
    uint32_t argc;
    uint32_t envc;
    uint32_t flags;
    uint32_t length;  // of the strings that follow: directory, argv..., envp..., each NUL-ended
};

struct spawn_reply {
    int32_t error;
    int32_t pid;        // the supervisor's, or the spare's for a prefork
    // Children of the gateway's started here that are gone or ending unknown to it (a spare
    // found gone, a supervisor dead before its group existed), or 0: the gateway reaps them.
    // Two: one request can lose a spare and then the supervisor forked in its place.
    int32_t lost_children[2];
};

// The supervisor's command line. A fork shows its parent's (`portico-spawner`), where an exec'd
// supervisor showed `portico-supervise MEMORY OPEN_FILES READY_PORT PATH COMMAND...`, which is
// how a person (and a test) tells a worker's supervisor in `ps`. So the spawner is started with
// room in its argv (`title_room` bytes of padding, cleared at once), and each supervisor writes
// its own arguments there, as setproctitle does: /proc/PID/cmdline reads that memory.
enum { title_room = 4096 };
static char *title_area;
static size_t title_capacity;

static void set_title(int argc, char **argv) {
    if (title_area == NULL || title_capacity == 0) return;
    size_t used = 0;
    for (int i = 0; i < argc && used < title_capacity - 1; i++) {
        size_t length = strlen(argv[i]);
        if (length > title_capacity - 1 - used) length = title_capacity - 1 - used;
        memcpy(title_area + used, argv[i], length);
        used += length;
        title_area[used++] = '\0';
    }
    memset(title_area + used, 0, title_capacity - used);
}

// The signals the supervisor holds while it starts (see supervise.c): held from the fork on,
// so that a stop the gateway sends as soon as it has the pid is kept for the supervisor.
static const int held_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static sigset_t held_set(void) {
    sigset_t held;
    sigemptyset(&held);
    for (size_t i = 0; i < sizeof(held_signals) / sizeof(held_signals[0]); i++) sigaddset(&held, held_signals[i]);
    return held;
}

/// First thing in a new supervisor (or spare): the stop signals held, a process group of its
/// own, then the byte on `started_fd` that lets the spawner answer.
static void enter_own_group(int started_fd) {
    sigset_t held = held_set();
    sigprocmask(SIG_BLOCK, &held, NULL);
    // The gateway signals the supervisor's process group as soon as it has the pid, so the
    // group must exist by then: the spawner answers only once this byte is written.
    if (setpgid(0, 0) != 0) _exit(127);
    char started = 1;
    if (write(started_fd, &started, 1) != 1) _exit(127);
    close(started_fd);
}

/// A request's parts; the strings point into the buffer it came in.
struct parsed_request {
    uint32_t flags;
    int argc;
    char **arguments;  // allocated: argv..., NULL, envp..., NULL
    char **envp;
    char *directory;
};

/// Checks and splits a request of `got` bytes that came with `fd_count` descriptors. Returns 0
/// or an errno (EINVAL for a malformed request).
static int parse_request(char *buffer, ssize_t got, int truncated, int fd_count, struct parsed_request *out) {
    struct spawn_request request;
    memset(out, 0, sizeof(*out));
    if (got < (ssize_t)sizeof(request) || truncated) return EINVAL;
    memcpy(&request, buffer, sizeof(request));
    out->flags = request.flags;
    if (request.flags & is_prefork) {
        return request.length == 0 && fd_count == 0 && got == (ssize_t)sizeof(request) ? 0 : EINVAL;
    }
    int expected_fds = 3 + ((request.flags & has_stdin) ? 1 : 0) + ((request.flags & has_ready) ? 1 : 0);
    if (request.length != (size_t)got - sizeof(request) || request.argc == 0 || request.argc > 65536 ||
        request.envc > 65536 || fd_count != expected_fds) return EINVAL;
    // The strings: directory, then argc arguments, then envc variables.
    char **arguments = calloc(request.argc + request.envc + 2, sizeof(char *));
    if (arguments == NULL) return ENOMEM;
    char *cursor = buffer + sizeof(request);
    char *end = cursor + request.length;
    uint32_t total = 1 + request.argc + request.envc;
    uint32_t index = 0;
    for (uint32_t i = 0; i < total; i++) {
        char *nul = memchr(cursor, '\0', (size_t)(end - cursor));
        if (nul == NULL) {
            free(arguments);
            return EINVAL;
        }
        if (i == 0) out->directory = cursor;
        else arguments[index++ + (i > request.argc ? 1 : 0)] = cursor;
        cursor = nul + 1;
    }
    out->argc = (int)request.argc;
    out->arguments = arguments;
    out->envp = arguments + request.argc + 1;
    return 0;
}

/// Sends `length` bytes of `data` as one message on `socket`, with `fd_count` (at most
/// `max_fds + 1`) descriptors; returns what sendmsg returned.
static ssize_t send_with_descriptors(int socket, const void *data, size_t length, const int *fds, int fd_count) {
    union {
        char space[CMSG_SPACE(sizeof(int) * (max_fds + 1))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec part = {(void *)data, length};
    struct msghdr message = {0};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)fd_count);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)fd_count);
    memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)fd_count);
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent;
}

/// Receives one message on `socket` into `buffer`: returns its length (0 at end of file, -1 on
/// an error), and sets its descriptors (up to `fd_capacity`; more are closed) and whether it
/// was cut short.
static ssize_t receive(int socket, char *buffer, size_t capacity, int *fds, int fd_capacity, int *fd_count, int *truncated) {
    union {
        char space[CMSG_SPACE(sizeof(int) * (max_fds + 1))];
        struct cmsghdr align;
    } control;
    struct iovec part = {buffer, capacity};
    struct msghdr message = {0};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = sizeof(control.space);
    *fd_count = 0;
    ssize_t got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (got <= 0) return got;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
                if (*fd_count < fd_capacity) fds[(*fd_count)++] = fd; else close(fd);
            }
        }
    }
    *truncated = (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    return got;
}

/// In the new supervisor, in its own group already: its descriptors (0-2, the control pipe as
/// 3, the readiness socket as 4), its name and its directory, then the supervisor's main.
static void become_supervisor(int *fds, int flags, int directory_fd, int argc, char **argv, char **envp) {
    prctl(PR_SET_NAME, (unsigned long)"portico-supervi");
    set_title(argc, argv);
    int null_fd = -1;
    if (!(flags & has_stdin)) null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    // [stdout, stderr, control, stdin?, ready?] as received; copied above 9 first so that
    // placing one never overwrites another still to be placed.
    int count = 3 + ((flags & has_stdin) ? 1 : 0) + ((flags & has_ready) ? 1 : 0);
    int high[max_fds];
    for (int i = 0; i < count; i++) {
        high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
        if (high[i] < 0) _exit(127);
    }
    int stdin_fd = (flags & has_stdin) ? high[3] : null_fd;
    int ready_fd = (flags & has_ready) ? high[count - 1] : -1;
    // None of these is already its target (the copies are above 9, /dev/null above 2), so each
    // dup2 makes a new descriptor without close-on-exec.
    if (stdin_fd < 0 || dup2(stdin_fd, 0) < 0 || dup2(high[0], 1) < 0 || dup2(high[1], 2) < 0 || dup2(high[2], 3) < 0) _exit(127);
    if (ready_fd >= 0 && dup2(ready_fd, 4) < 0) _exit(127);
    if (fchdir(directory_fd) != 0) _exit(127);
    // Nothing else of the spawner's (its socket to the gateway above all) reaches the supervisor.
    int first_closed = ready_fd >= 0 ? 5 : 4;
    if (syscall(SYS_close_range, first_closed, ~0U, 0) != 0) {
        for (int fd = first_closed; fd < 65536; fd++) close(fd);
    }
    _exit(portico_supervise_main(argc, argv, envp));
}

// Requests arrive here, in the spawner and (one passed on) in a spare.
static char buffer[sizeof(struct spawn_request) + max_request];

/// After a fork the two processes share their pages until one writes to one, and that write
/// faults to copy it. The pages that serving a request writes (the buffer it is read into,
/// the stack, the heap) are written here ahead of time instead, by the spare and by the
/// spawner, so that those faults are not on the next cold start's path.
static void touch_pages_written_after_fork(void) {
    memset(buffer, 0, 16384);
    volatile char stack[32768];
    for (size_t i = 0; i < sizeof(stack); i += 4096) stack[i] = 0;
    free(calloc(1, 4096));
}

/// A spare holds the stop signals from its fork on, as every new supervisor does, but it may
/// wait a long time: one that reached it meanwhile (a stray `kill`, not the gateway's: the
/// gateway signals a supervisor only once a spawn has named it) must not stop the worker it
/// is about to start. Those pending now are taken; the gateway's are put back.
static void keep_only_the_gateways_stops(void) {
    sigset_t held = held_set();
    pid_t gateway = getppid();
    struct timespec now = {0, 0};
    int kept[sizeof(held_signals) / sizeof(held_signals[0])];
    int kept_count = 0;
    siginfo_t info;
    int signal_number;
    while ((signal_number = sigtimedwait(&held, &info, &now)) > 0) {
        if (info.si_pid == gateway && kept_count < (int)(sizeof(kept) / sizeof(kept[0]))) kept[kept_count++] = signal_number;
    }
    for (int i = 0; i < kept_count; i++) kill(getpid(), kept[i]);
}

/// The spare's life, its socket to the spawner as fd 3: it waits for the one request it will
/// serve, passed on with the directory's descriptor after the request's own, and becomes that
/// supervisor; it ends if the spawner closes its end first.
static void run_spare(int started_fd) {
    enter_own_group(started_fd);
    prctl(PR_SET_NAME, (unsigned long)"portico-spare");
    char *title[] = {"portico-spare"};
    set_title(1, title);
    touch_pages_written_after_fork();
    int fds[max_fds + 1];
    int fd_count = 0;
    int truncated = 0;
    ssize_t got;
    do {
        got = receive(spawner_socket, buffer, sizeof(buffer), fds, max_fds + 1, &fd_count, &truncated);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) _exit(0);
    keep_only_the_gateways_stops();
    struct parsed_request request;
    // The spawner checked it: a failure here is the spawner's bug, and ends this supervisor
    // as a failed exec would.
    if (fd_count < 1 || parse_request(buffer, got, truncated, fd_count - 1, &request) != 0 ||
        (request.flags & is_prefork)) _exit(127);
    become_supervisor(fds, (int)request.flags, fds[fd_count - 1], request.argc, request.arguments, request.envp);
}

static pid_t spare_pid = 0;
static int spare_socket = -1;
/// Children that the gateway does not know and must reap (see `spawn_reply`), for the next
/// reply to name.
static pid_t lost_children[2];

static void lose(pid_t child) {
    if (lost_children[0] == 0) lost_children[0] = child;
    else if (lost_children[1] == 0) lost_children[1] = child;
}

/// Whether the spare has ended (killed from outside): it never writes, so its socket is
/// readable only at its end.
static int spare_is_gone(void) {
    struct pollfd end = {.fd = spare_socket, .events = POLLIN};
    return poll(&end, 1, 0) != 0;
}

/// Raw clone: glibc's fork takes no flags. The child then runs only the supervisor's code,
/// which needs nothing of glibc's per-thread state that a raw clone leaves stale (the cached
/// thread id: no error-checking or robust mutexes are used).
static long fork_as_gateways_child(void) {
    return syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, 0UL);
}

/// Waits for a new child's byte on `started_fd` (end of file: it died before its group
/// existed); returns whether it came.
static int wait_until_started(int started_fd) {
    char byte;
    ssize_t read_count;
    do {
        read_count = read(started_fd, &byte, 1);
    } while (read_count < 0 && errno == EINTR);
    return read_count == 1;
}

/// Forks the spare (see the top of this file); returns 0 or an errno.
static int make_spare(void) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return errno;
    int started[2];
    if (pipe2(started, O_CLOEXEC) != 0) {
        int error = errno;
        close(pair[0]);
        close(pair[1]);
        return error;
    }
    long pid = fork_as_gateways_child();
    if (pid == 0) {
        close(pair[0]);
        close(started[0]);
        // Its socket takes the place of its copy of the spawner's socket to the gateway: a
        // copy kept open here would hide the spawner's end from the gateway.
        if (dup2(pair[1], spawner_socket) < 0) _exit(127);
        if (started[1] != 4 && dup2(started[1], 4) < 0) _exit(127);
        if (syscall(SYS_close_range, 5, ~0U, 0) != 0) {
            for (int fd = 5; fd < 65536; fd++) close(fd);
        }
        run_spare(4);
    }
    int error = pid < 0 ? errno : 0;
    close(pair[1]);
    close(started[1]);
    if (pid > 0 && !wait_until_started(started[0])) {
        lose((pid_t)pid);
        error = ECHILD;
    }
    close(started[0]);
    if (error != 0) {
        close(pair[0]);
        return error;
    }
    spare_pid = (pid_t)pid;
    spare_socket = pair[0];
    touch_pages_written_after_fork();
    return 0;
}

/// Passes a checked spawn request (`got` bytes in `buffer`, with `fds` and the directory's
/// descriptor) on to the spare; returns its pid, or 0 when there is none or it is gone.
static pid_t hand_to_spare(ssize_t got, int *fds, int fd_count, int directory_fd) {
    if (spare_pid == 0) return 0;
    pid_t spare = spare_pid;
    int passed[max_fds + 1];
    memcpy(passed, fds, sizeof(int) * (size_t)fd_count);
    passed[fd_count] = directory_fd;
    ssize_t sent = send_with_descriptors(spare_socket, buffer, (size_t)got, passed, fd_count + 1);
    // Either way this spare is used up: one that did not take the request (gone, or the
    // request too large for it) sees its socket close and ends, and the gateway reaps it.
    close(spare_socket);
    spare_socket = -1;
    spare_pid = 0;
    if (sent == got) return spare;
    lose(spare);
    return 0;
}

int portico_spawner_main(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 1 || strcmp(argv[0], spawner_name) != 0) {
        dprintf(2, "portico-spawner: started by the gateway only\n");
        return 125;
    }
    // The gateway's spawn set PDEATHSIG, which fires when the gateway's *thread* that spawned
    // it ends, not the gateway. The end of the socket is what ends the spawner.
    prctl(PR_SET_PDEATHSIG, 0);
    prctl(PR_SET_NAME, (unsigned long)spawner_name);
    if (argc >= 2) {
        title_area = argv[0];
        title_capacity = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
        for (int i = 1; i < argc; i++) memset(argv[i], 0, strlen(argv[i]));
    }
    fcntl(spawner_socket, F_SETFD, FD_CLOEXEC);
    // Its forks are the gateway's children, never its own, so it has nothing to reap.
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fds[max_fds];
        int fd_count = 0;
        int truncated = 0;
        ssize_t got = receive(spawner_socket, buffer, sizeof(buffer), fds, max_fds, &fd_count, &truncated);
        if (got == 0) return 0;  // the gateway is gone
        if (got < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        struct spawn_reply reply = {EINVAL, 0, {0, 0}};
        struct parsed_request request;
        int directory_fd = -1;
        int parsed = parse_request(buffer, got, truncated, fd_count, &request);
        if (parsed != 0) {
            reply.error = parsed;
        } else if (request.flags & is_prefork) {
            if (spare_pid != 0 && spare_is_gone()) {
                lose(spare_pid);
                close(spare_socket);
                spare_socket = -1;
                spare_pid = 0;
            }
            reply.error = spare_pid != 0 ? 0 : make_spare();
            reply.pid = spare_pid;
        } else {
            // The directory is opened here, so that a missing one is this spawn's error, as it
            // is for an exec'd child; the supervisor changes into it with fchdir.
            directory_fd = open(request.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (directory_fd < 0) {
                reply.error = errno;
            } else if ((reply.pid = hand_to_spare(got, fds, fd_count, directory_fd)) != 0) {
                reply.error = 0;
            } else {
                int started[2];
                long pid = -1;
                if (pipe2(started, O_CLOEXEC) != 0) {
                    reply.error = errno;
                } else {
                    pid = fork_as_gateways_child();
                    if (pid == 0) {
                        close(started[0]);
                        enter_own_group(started[1]);
                        become_supervisor(fds, (int)request.flags, directory_fd, request.argc, request.arguments, request.envp);
                    }
                    close(started[1]);
                    if (pid < 0) {
                        reply.error = errno;
                    } else if (wait_until_started(started[0])) {
                        reply.error = 0;
                        reply.pid = (int32_t)pid;
                    } else {
                        reply.error = ECHILD;
                        lose((pid_t)pid);
                    }
                    close(started[0]);
                }
            }
        }
        for (int i = 0; i < fd_count; i++) close(fds[i]);
        if (directory_fd >= 0) close(directory_fd);
        free(request.arguments);
        memcpy(reply.lost_children, lost_children, sizeof(lost_children));
        memset(lost_children, 0, sizeof(lost_children));
        while (send(spawner_socket, &reply, sizeof(reply), MSG_NOSIGNAL) < 0) {
            if (errno != EINTR) return 1;
        }
    }
}

int portico_spawner_start(const char *path, int stderr_fd, int *socket_out, pid_t *pid_out) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return errno;
    // Room for each supervisor's command line (see set_title).
    static char room[title_room];
    memset(room, ' ', sizeof(room) - 1);
    room[sizeof(room) - 1] = '\0';
    char *argv[] = {(char *)spawner_name, room, NULL};
    char *envp[] = {NULL};
    int result = portico_spawn(path, argv, envp, "/", -1, -1, stderr_fd, 0, 0, pair[1], -1, pid_out);
    close(pair[1]);
    if (result != 0) {
        close(pair[0]);
        return result;
    }
    *socket_out = pair[0];
    return 0;
}

/// The spawner's reply to a request just sent: its error (0: `*pid_out` is set), or -1 when
/// the spawner is gone. `lost_out[0]` and `[1]` are children for the caller to reap, or 0.
static int receive_reply(int socket, pid_t *pid_out, pid_t *lost_out) {
    struct spawn_reply reply;
    ssize_t got;
    do {
        got = recv(socket, &reply, sizeof(reply), 0);
    } while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof(reply)) return -1;
    lost_out[0] = reply.lost_children[0];
    lost_out[1] = reply.lost_children[1];
    if (reply.error != 0) return reply.error;
    *pid_out = reply.pid;
    return 0;
}

int portico_spawner_spawn(int socket, char *const argv[], char *const envp[], const char *directory,
                          int stdin_fd, int stdout_fd, int stderr_fd, int control_fd, int ready_fd, pid_t *pid_out,
                          pid_t lost_out[2]) {
    if (stdout_fd < 0 || stderr_fd < 0 || control_fd < 0) return -1;
    struct spawn_request request = {0, 0, 0, 0};
    size_t length = strlen(directory) + 1;
    for (char *const *a = argv; *a != NULL; a++) { length += strlen(*a) + 1; request.argc++; }
    for (char *const *e = envp; *e != NULL; e++) { length += strlen(*e) + 1; request.envc++; }
    if (length > max_request) return -1;
    request.length = (uint32_t)length;
    request.flags = (stdin_fd >= 0 ? has_stdin : 0) | (ready_fd >= 0 ? has_ready : 0);
    char *body = malloc(sizeof(request) + length);
    if (body == NULL) return -1;
    memcpy(body, &request, sizeof(request));
    char *cursor = body + sizeof(request);
    size_t part_length = strlen(directory) + 1;
    memcpy(cursor, directory, part_length);
    cursor += part_length;
    for (char *const *a = argv; *a != NULL; a++) { part_length = strlen(*a) + 1; memcpy(cursor, *a, part_length); cursor += part_length; }
    for (char *const *e = envp; *e != NULL; e++) { part_length = strlen(*e) + 1; memcpy(cursor, *e, part_length); cursor += part_length; }
    int fds[max_fds] = {stdout_fd, stderr_fd, control_fd};
    int fd_count = 3;
    if (stdin_fd >= 0) fds[fd_count++] = stdin_fd;
    if (ready_fd >= 0) fds[fd_count++] = ready_fd;
    ssize_t sent = send_with_descriptors(socket, body, sizeof(request) + length, fds, fd_count);
    free(body);
    if (sent < 0) return -1;
    return receive_reply(socket, pid_out, lost_out);
}

int portico_spawner_prefork(int socket, pid_t *pid_out, pid_t lost_out[2]) {
    struct spawn_request request = {0, 0, is_prefork, 0};
    ssize_t sent;
    do {
        sent = send(socket, &request, sizeof(request), MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return -1;
    return receive_reply(socket, pid_out, lost_out);
}
