#define _GNU_SOURCE
#include "CPorticoSpawn.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Between fork and exec the child of a multithreaded process may only make async-signal-safe
// calls: everything below is a plain system call, and nothing allocates.
static void fail_in_child(int report_fd) {
    int error = errno;
    ssize_t ignored = write(report_fd, &error, sizeof(error));
    (void)ignored;
    _exit(127);
}

int portico_spawn(const char *path, char *const argv[], char *const envp[], const char *directory,
                  int stdin_fd, int stdout_fd, int stderr_fd,
                  long long memory_limit, long long open_files_limit, int control_fd, int ready_fd, pid_t *pid_out) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    pid_t parent = getpid();

    // vfork, not fork: fork copies the page tables of the whole gateway (tens of MiB mapped),
    // which cost a cold start milliseconds, only for exec to throw the copy away. The child
    // borrows the parent's memory until exec, so it writes nothing but the kernel's state and
    // its own stack (glibc's posix_spawn does the same). Every signal is blocked across it, so
    // no handler of the gateway runs in the child before the child has reset them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = vfork();
    if (pid < 0) {
        int error = errno;
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        close(report[0]);
        close(report[1]);
        return error;
    }
    if (pid == 0) {
        close(report[0]);
        // Die with the gateway, even when it is SIGKILLed; and close the race where it died
        // before the line above ran.
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_in_child(report[1]);
        if (getppid() != parent) _exit(126);
        // Its own process group, so stopping a worker stops everything it started.
        if (setpgid(0, 0) != 0) fail_in_child(report[1]);

        // Undo what the gateway set: handlers and an ignored SIGPIPE first, then the blocked
        // signals, so nothing the gateway installed can run here.
        struct sigaction defaults;
        memset(&defaults, 0, sizeof(defaults));
        defaults.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;
            sigaction(sig, &defaults, NULL);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        int null_fd = open("/dev/null", O_RDWR);
        if (dup2(stdin_fd >= 0 ? stdin_fd : null_fd, 0) < 0) fail_in_child(report[1]);
        if (dup2(stdout_fd >= 0 ? stdout_fd : null_fd, 1) < 0) fail_in_child(report[1]);
        if (dup2(stderr_fd >= 0 ? stderr_fd : null_fd, 2) < 0) fail_in_child(report[1]);

        // A supervisor gets its control pipe as fd 3 and its readiness socket as fd 4, without
        // close-on-exec. Both are first copied above 9, so that neither overwrites the other
        // (or the report pipe) on the way; the report pipe moves out of the way if it is 3 or 4.
        int keep = report[1];
        int first_closed = 3;
        if (control_fd >= 0) {
            if (keep == 3 || keep == 4) {
                keep = fcntl(keep, F_DUPFD_CLOEXEC, 10);
                if (keep < 0) fail_in_child(report[1]);
            }
            int control_copy = fcntl(control_fd, F_DUPFD_CLOEXEC, 10);
            int ready_copy = ready_fd >= 0 ? fcntl(ready_fd, F_DUPFD_CLOEXEC, 10) : -1;
            if (control_copy < 0 || (ready_fd >= 0 && ready_copy < 0)) fail_in_child(keep);
            if (dup2(control_copy, 3) < 0) fail_in_child(keep);
            first_closed = 4;
            if (ready_copy >= 0) {
                if (dup2(ready_copy, 4) < 0) fail_in_child(keep);
                first_closed = 5;
            }
        }

        // Only 0, 1, 2 (3 and 4 for a supervisor) and the report pipe (close-on-exec) may reach the
        // child: no listening socket or client connection of the gateway leaks into it.
        // close_range is one system call where a loop is tens of thousands: it matters for
        // cold starts. The loop is the fallback for kernels older than 5.9.
        if (keep < first_closed || syscall(SYS_close_range, first_closed, keep - 1, 0) != 0 ||
            syscall(SYS_close_range, keep + 1, ~0U, 0) != 0) {
            for (int fd = first_closed; fd < 65536; fd++) {
                if (fd != keep) close(fd);
            }
        }

        // Limits last: a low RLIMIT_NOFILE set earlier would make opening /dev/null fail in a
        // gateway that has many descriptors open.
        if (memory_limit > 0) {
            struct rlimit limit = { (rlim_t)memory_limit, (rlim_t)memory_limit };
            if (setrlimit(RLIMIT_AS, &limit) != 0) fail_in_child(keep);
        }
        if (open_files_limit > 0) {
            struct rlimit limit = { (rlim_t)open_files_limit, (rlim_t)open_files_limit };
            if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail_in_child(keep);
        }
        if (directory != NULL && chdir(directory) != 0) fail_in_child(keep);
        execve(path, argv, envp);
        fail_in_child(keep);
    }

    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(report[1]);
    int child_error = 0;
    ssize_t got;
    do {
        got = read(report[0], &child_error, sizeof(child_error));
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof(child_error)) {
        // The child failed before exec; reap it here so it never lingers as a zombie.
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return child_error;
    }
    *pid_out = pid;
    return 0;
}

int portico_take_descriptor(pid_t pid, int target_fd) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) return -1;
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
    int saved = errno;
    close(pidfd);
    errno = saved;
    return fd;
}

int portico_peer_port(int fd) {
    struct sockaddr_in peer;
    socklen_t length = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &length) != 0 || peer.sin_family != AF_INET) return -1;
    return ntohs(peer.sin_port);
}

int portico_kill_group(pid_t pid, int signal) {
    return kill(-pid, signal) == 0 ? 0 : errno;
}

int portico_try_reap(pid_t pid, int *status_out) {
    int status = 0;
    pid_t result;
    do {
        result = waitpid(pid, &status, WNOHANG);
    } while (result < 0 && errno == EINTR);
    if (result == 0) return 0;
    if (result < 0) return -1;
    *status_out = status;
    return 1;
}

int portico_exited(int status) { return WIFEXITED(status); }
int portico_exit_status(int status) { return WEXITSTATUS(status); }
int portico_signaled(int status) { return WIFSIGNALED(status); }
int portico_term_signal(int status) { return WTERMSIG(status); }

int portico_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}

int portico_rename_exchange(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) == 0 ? 0 : errno;
}

int portico_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : errno;
}

void portico_trim_heap(void) {
    malloc_trim(0);
}

int portico_has_exited(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return info.si_pid == pid;
}
