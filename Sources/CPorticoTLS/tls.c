#include "CPorticoTLS.h"

// NIOSSL's own copy of BoringSSL, linked into every binary that uses NIOSSL. Its symbols carry
// the CNIOBoringSSL_ prefix, and its module is not a product another package may import, so
// the one function needed is declared here by its linked name.
extern uint32_t CNIOBoringSSL_SSL_CTX_set_options(void *ctx, uint32_t options);

uint32_t portico_ssl_ctx_prefer_server_ciphers(void *ssl_ctx) {
    return CNIOBoringSSL_SSL_CTX_set_options(ssl_ctx, PORTICO_SSL_OP_CIPHER_SERVER_PREFERENCE);
}
