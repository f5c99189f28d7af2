/* Portico's native example function: a small HTTP/1.1 keep-alive server on 127.0.0.1:$PORT.
 *
 * One thread, poll() over every connection, so the many connections a gateway keeps open to
 * a worker are all served. It answers every request with a fixed greeting; a real function
 * would parse the path and do its work where `respond` is. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
#define BUFFER_SIZE 16384

struct connection {
    int fd;
    size_t used;
    char buffer[BUFFER_SIZE];
};

static struct pollfd polls[MAX_CONNECTIONS + 1];
static struct connection *connections[MAX_CONNECTIONS + 1];
static volatile sig_atomic_t stopping = 0;

static void on_term(int signal_number) { (void)signal_number; stopping = 1; }

static void drop(int index, int *count) {
    close(polls[index].fd);
    free(connections[index]);
    polls[index] = polls[*count - 1];
    connections[index] = connections[*count - 1];
    (*count)--;
}

/* Answers every complete request in the buffer; returns 0 to keep the connection, -1 to drop it. */
static int respond(struct connection *c) {
    static const char body[] = "Hello from a native worker\n";
    for (;;) {
        char *end = memmem(c->buffer, c->used, "\r\n\r\n", 4);
        if (end == NULL) return c->used == BUFFER_SIZE ? -1 : 0;
        size_t head = (size_t)(end - c->buffer) + 4;
        size_t body_length = 0;
        char *length = memmem(c->buffer, head, "\r\ncontent-length:", 17);
        if (length == NULL) length = memmem(c->buffer, head, "\r\nContent-Length:", 17);
        if (length != NULL) body_length = strtoul(length + 17, NULL, 10);
        if (c->used < head + body_length) return 0;

        char response[256];
        int n = snprintf(response, sizeof(response),
                         "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n\r\n%s",
                         sizeof(body) - 1, body);
        if (write(c->fd, response, (size_t)n) != n) return -1;
        memmove(c->buffer, c->buffer + head + body_length, c->used - head - body_length);
        c->used -= head + body_length;
    }
}

int main(void) {
    const char *port = getenv("PORT");
    if (port == NULL) {
        fprintf(stderr, "PORT is not set\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)atoi(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(listener, 1024) != 0) {
        perror("listen");
        return 1;
    }
    polls[0].fd = listener;
    polls[0].events = POLLIN;
    int count = 1;

    while (!stopping) {
        if (poll(polls, (nfds_t)count, 1000) < 0) {
            if (errno == EINTR) continue;
            perror("poll");
            return 1;
        }
        if (polls[0].revents & POLLIN) {
            int fd = accept(listener, NULL, NULL);
            if (fd >= 0 && count <= MAX_CONNECTIONS) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
                struct connection *c = calloc(1, sizeof(*c));
                c->fd = fd;
                polls[count].fd = fd;
                polls[count].events = POLLIN;
                polls[count].revents = 0;
                connections[count] = c;
                count++;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (int i = count - 1; i >= 1; i--) {
            if (polls[i].revents == 0) continue;
            struct connection *c = connections[i];
            ssize_t got = read(c->fd, c->buffer + c->used, BUFFER_SIZE - c->used);
            if (got <= 0 || (c->used += (size_t)got, respond(c) != 0)) drop(i, &count);
        }
    }
    return 0;
}
