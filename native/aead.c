/*
 * AES-256-GCM in one call, for the hot path of Encrypt and Decrypt.
 *
 * node:crypto needs five calls into C++ per seal or open (createCipheriv/createDecipheriv,
 * setAAD, setAuthTag or getAuthTag, update, final), each allocating JavaScript objects (a Cipheriv
 * stream object, a CipherBase handle with a weak reference the garbage collector must process, two
 * result Buffers). This addon does the same OpenSSL EVP calls, against the OpenSSL inside the
 * running node binary (the symbols Node exports for addons; nothing is linked or bundled), in one
 * call that writes into a Buffer the caller supplies:
 *
 * Both work on our sealed layout, nonce (12) ‖ ciphertext ‖ tag (16), found at `nonceAt` inside a
 * larger Buffer (after the format byte and the commitment), so no view of its parts is needed:
 *
 *   seal(key, aad, plaintext, out, nonceAt): undefined
 *       reads the nonce at out[nonceAt, +12), writes the ciphertext right after it and the tag
 *       right after the ciphertext. Throws on any OpenSSL failure.
 *   open(key, aad, sealed, nonceAt, out): boolean
 *       decrypts sealed[nonceAt + 12, length - 16) into out[0, n) and returns true only if the
 *       tag (the last 16 bytes of sealed) verifies; on false (or a throw) out[0, n) has been
 *       wiped, so no unauthenticated byte is ever left in it.
 *
 * Every byte argument is a Uint8Array (Buffers are); key is 32 bytes. The caller
 * (src/envelope/aead.ts) checks the lengths too; the checks here keep a wrong call from reading or
 * writing outside the arrays. The cipher context is created and freed per call (OpenSSL clears the
 * key schedule when it frees it), so no key material stays behind in this addon. The AES-256-GCM
 * implementation is fetched once from the default library context (the one node:crypto uses, FIPS
 * settings included). Only N-API (node_api.h) plus OpenSSL 3's EVP interface are used.
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define KEY_BYTES 32
#define IV_BYTES 12
#define TAG_BYTES 16

static EVP_CIPHER *aes_gcm = NULL;

typedef struct {
  uint8_t *data;
  size_t length;
} bytes_t;

static int throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return 0;
}

/* args[i] as bytes; a Uint8Array (or Buffer) only. */
static int get_bytes(napi_env env, napi_value value, bytes_t *out, const char *name) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    char msg[96];
    snprintf(msg, sizeof msg, "aead: %s must be a Uint8Array", name);
    return throw_error(env, msg);
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &ab, &offset) != napi_ok ||
      type != napi_uint8_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "aead: %s must be a Uint8Array", name);
    return throw_error(env, msg);
  }
  out->data = (uint8_t *)data;
  out->length = length;
  return 1;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want)
    return throw_error(env, "aead: wrong number of arguments");
  return 1;
}

static int cipher(napi_env env) {
  if (aes_gcm == NULL) aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  return aes_gcm != NULL ? 1 : throw_error(env, "aead: AES-256-GCM is not available in this OpenSSL");
}

static int check_common(napi_env env, const bytes_t *key, const bytes_t *aad) {
  if (key->length != KEY_BYTES) return throw_error(env, "aead: key must be 32 bytes");
  if (aad->length > INT_MAX) return throw_error(env, "aead: aad too long");
  return 1;
}

/* The five arguments of seal/open: four byte arrays (named, in order) and the integer nonceAt at
 * position at_index; then the checks both share. */
static int parse_args(napi_env env, napi_callback_info info, const char *const names[4], bytes_t *b[4],
                      size_t at_index, int64_t *at) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return 0;
  for (size_t i = 0, j = 0; i < 5; i++) {
    if (i == at_index) {
      if (napi_get_value_int64(env, argv[i], at) != napi_ok || *at < 0)
        return throw_error(env, "aead: nonceAt must be a non-negative integer");
    } else if (!get_bytes(env, argv[i], b[j], names[j])) {
      return 0;
    } else {
      j++;
    }
  }
  return check_common(env, b[0], b[1]) && cipher(env);
}

/* One AES-256-GCM pass (enc 1: seal, 0: open) over n bytes of in into out. Sealing writes the tag to
 * `tag`; opening checks it against `tag`. Returns 1 only on success (for open: the tag verified). */
static int gcm(int enc, const uint8_t *key, const uint8_t *iv, const bytes_t *aad, const uint8_t *in, size_t n,
               uint8_t *out, uint8_t *tag) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  int ok = ctx != NULL && EVP_CipherInit_ex(ctx, aes_gcm, NULL, key, iv, enc) == 1 &&
           (aad->length == 0 || EVP_CipherUpdate(ctx, NULL, &len, aad->data, (int)aad->length) == 1) &&
           EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1 &&
           (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) == 1) &&
           EVP_CipherFinal_ex(ctx, out + len, &len) == 1 &&
           (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) == 1);
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

/* seal(key, aad, plaintext, out, nonceAt): the nonce is read from out[nonceAt, +12), the
 * ciphertext written right after it and the tag right after the ciphertext. */
static napi_value seal(napi_env env, napi_callback_info info) {
  static const char *const names[4] = {"key", "aad", "plaintext", "out"};
  bytes_t key, aad, pt, out;
  bytes_t *b[4] = {&key, &aad, &pt, &out};
  int64_t at;
  if (!parse_args(env, info, names, b, 4, &at)) return NULL;
  if (pt.length > INT_MAX || (size_t)at > out.length ||
      out.length - (size_t)at < IV_BYTES + pt.length + TAG_BYTES)
    return throw_error(env, "aead: out is too small"), NULL;

  const uint8_t *iv = out.data + at;
  uint8_t *dst = out.data + at + IV_BYTES;
  if (!gcm(1, key.data, iv, &aad, pt.data, pt.length, dst, dst + pt.length)) {
    OPENSSL_cleanse(dst, pt.length + TAG_BYTES);
    return throw_error(env, "aead: AES-256-GCM seal failed"), NULL;
  }
  return NULL;
}

/* open(key, aad, sealed, nonceAt, out): sealed[nonceAt, +12) is the nonce, the tag is the last 16
 * bytes of sealed and the ciphertext is everything between; the plaintext goes to out[0, n). */
static napi_value open_(napi_env env, napi_callback_info info) {
  static const char *const names[4] = {"key", "aad", "sealed", "out"};
  bytes_t key, aad, sealed, out;
  bytes_t *b[4] = {&key, &aad, &sealed, &out};
  int64_t at;
  if (!parse_args(env, info, names, b, 3, &at)) return NULL;
  if ((size_t)at > sealed.length || sealed.length - (size_t)at < IV_BYTES + TAG_BYTES)
    return throw_error(env, "aead: sealed is too short"), NULL;
  size_t n = sealed.length - (size_t)at - IV_BYTES - TAG_BYTES;
  if (n > INT_MAX || out.length < n) return throw_error(env, "aead: out is too small"), NULL;

  const uint8_t *iv = sealed.data + at;
  const uint8_t *body = iv + IV_BYTES;
  uint8_t tag[TAG_BYTES];
  memcpy(tag, body + n, TAG_BYTES);
  int ok = gcm(0, key.data, iv, &aad, body, n, out.data, tag);
  if (!ok) OPENSSL_cleanse(out.data, n);
  napi_value result;
  napi_get_boolean(env, ok ? true : false, &result);
  return result;
}

/* Bumped whenever seal/open change their arguments, so a stale binary is not used by newer JS. */
#define AEAD_ABI 2

NAPI_MODULE_INIT() {
  napi_value abi;
  if (napi_create_uint32(env, AEAD_ABI, &abi) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"abi", NULL, NULL, NULL, NULL, abi, napi_enumerable, NULL},
      {"seal", NULL, seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"open", NULL, open_, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
