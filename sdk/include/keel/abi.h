/*
 * keel module ABI — the only contract between the keel kernel and a module.
 *
 * A module is a shared library that exports exactly one symbol, keel_module_entry, which
 * returns a pointer to a static keel_module descriptor. Everything else crosses as plain C:
 * UTF-8 JSON payloads in {ptr,len} strings, opaque handles and status codes.
 *
 * Rules (see docs/module-authors.md):
 *  - The descriptor begins with {abi_major, abi_minor, struct_size}. A host accepts a module
 *    whose major equals its own and whose minor is not newer, and reads fields only up to
 *    struct_size, so later minors may append fields.
 *  - Host services come in as a function table (keel_host_api); a module links against
 *    nothing of the kernel.
 *  - Strings are borrowed for the duration of the call that passes them. The receiver copies
 *    what it keeps; the sender frees what it allocated.
 *  - Every request handed to handle() is answered by exactly one call to host->reply(), from
 *    any thread, at any later time. host->emit() may be called any number of times before it
 *    (streaming deltas, progress). After reply() the call handle is dead.
 *  - No exception, longjmp or C++ object ever crosses this boundary.
 */
#ifndef KEEL_ABI_H
#define KEEL_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef KEEL_ABI_MAJOR
#define KEEL_ABI_MAJOR 1
#endif
#ifndef KEEL_ABI_MINOR
#define KEEL_ABI_MINOR 0
#endif

#define KEEL_ENTRY_SYMBOL "keel_module_entry"

#if defined(_WIN32)
#define KEEL_EXPORT __declspec(dllexport)
#else
#define KEEL_EXPORT __attribute__((visibility("default")))
#endif

/* A borrowed UTF-8 string; not NUL-terminated in general. */
typedef struct keel_str {
  const char* ptr;
  size_t len;
} keel_str;

typedef enum keel_status {
  KEEL_OK = 0,
  KEEL_ERR_INVALID_ARGUMENT = 1, /* the payload is malformed or breaks the schema */
  KEEL_ERR_NOT_FOUND = 2,        /* no such method / capability / object */
  KEEL_ERR_UNAVAILABLE = 3,      /* a dependency (server, binary) cannot be reached */
  KEEL_ERR_CANCELLED = 4,        /* the caller cancelled the request */
  KEEL_ERR_TIMEOUT = 5,
  KEEL_ERR_DENIED = 6,           /* refused by policy, sandbox or the user */
  KEEL_ERR_INTERNAL = 7          /* a bug or an unexpected failure inside the module */
} keel_status;

typedef enum keel_capability_kind {
  KEEL_CAP_PROVIDER = 1,
  KEEL_CAP_TOOL = 2,
  KEEL_CAP_SANDBOX = 3,
  KEEL_CAP_POLICY = 4,
  KEEL_CAP_MEMORY = 5,
  KEEL_CAP_UI = 6
} keel_capability_kind;

/* Capability flags (tools). */
#define KEEL_FLAG_PARALLEL_SAFE 0x1u /* may run concurrently with other parallel-safe calls */
#define KEEL_FLAG_MUTATING 0x2u      /* changes the workspace; runs one at a time */
#define KEEL_FLAG_FREEFORM 0x4u      /* takes free text ("custom" tool), not JSON arguments */

typedef enum keel_log_level {
  KEEL_LOG_DEBUG = 0,
  KEEL_LOG_INFO = 1,
  KEEL_LOG_WARN = 2,
  KEEL_LOG_ERROR = 3
} keel_log_level;

typedef struct keel_capability {
  uint32_t kind;            /* keel_capability_kind */
  uint32_t flags;           /* KEEL_FLAG_* */
  const char* name;         /* unique within its kind, e.g. "shell", "openai-chat" */
  const char* description;  /* shown to users and, for tools, to the model */
  const char* schema_json;  /* tools: JSON schema of the arguments (or freeform format); may be NULL */
} keel_capability;

/* Opaque handles owned by the host. */
typedef struct keel_host keel_host;  /* one per loaded module instance */
typedef struct keel_call keel_call;  /* one per request; dies at reply() */

/* Callbacks the host invokes on module-supplied functions. */
typedef void (*keel_event_fn)(void* user, keel_str topic, keel_str event_json);
typedef void (*keel_reply_fn)(void* user, int status, keel_str payload_json);
typedef void (*keel_emit_fn)(void* user, keel_str event_json);

/*
 * Host services, passed to start(). Valid until stop() returns. All functions are
 * thread-safe. Fields are only ever appended; check struct_size before using later ones.
 */
typedef struct keel_host_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size;

  void (*log)(keel_host* host, int level, keel_str message);

  /* Publish an event on a topic of the bus (e.g. "event"). */
  void (*publish)(keel_host* host, keel_str topic, keel_str event_json);

  /* Subscribe to every event whose topic starts with topic_prefix. Events arrive in order,
   * on a thread of the host's; returns a subscription id (> 0) or 0 on failure. */
  uint64_t (*subscribe)(keel_host* host, keel_str topic_prefix, keel_event_fn fn, void* user);
  void (*unsubscribe)(keel_host* host, uint64_t subscription);

  /* Send a request to whatever serves `topic` (e.g. "kernel.submit", "sandbox.prepare").
   * on_emit (may be NULL) receives streamed partials; on_reply is called exactly once.
   * Returns a request id usable with cancel(). */
  uint64_t (*request)(keel_host* host, keel_str topic, keel_str payload_json,
                      keel_emit_fn on_emit, keel_reply_fn on_reply, void* user);
  void (*cancel)(keel_host* host, uint64_t request_id);

  /* For a request being handled by this module. */
  void (*emit)(keel_call* call, keel_str event_json);
  void (*reply)(keel_call* call, int status, keel_str payload_json);
  int (*is_cancelled)(keel_call* call);
} keel_host_api;

/*
 * The module descriptor. Static, immutable, returned by keel_module_entry().
 */
typedef struct keel_module {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof(keel_module) as the module was compiled */

  const char* name;
  const char* version;
  const char* description;

  const keel_capability* capabilities;
  size_t capability_count;

  /* Create an instance. config_json is this module's configuration (an object). On failure
   * return non-zero and write a NUL-terminated message into err (at most err_len bytes). */
  int (*start)(const keel_host_api* api, keel_host* host, keel_str config_json,
               void** instance, char* err, size_t err_len);

  /* Handle one request for one of this module's capabilities. `capability` names it,
   * `method` says what is asked ("call", "stream", "prepare", "check", "run", ...).
   * Called on a host thread that is prepared to wait, so it may block (run a process,
   * stream a response) but should honour api->is_cancelled(). It must eventually call
   * api->reply(call, ...) exactly once, from this or any other thread. */
  void (*handle)(void* instance, keel_call* call, keel_str capability, keel_str method,
                 keel_str payload_json);

  /* Destroy the instance. Called after every outstanding call has been replied to or
   * cancelled; the module must not call the host after returning. */
  void (*stop)(void* instance);
} keel_module;

/* The one exported symbol. The host passes its own ABI version so a module may adapt. */
typedef const keel_module* (*keel_module_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor);

#ifdef __cplusplus
}
#endif

#endif /* KEEL_ABI_H */
