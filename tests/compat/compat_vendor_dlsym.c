/* Loaded the way plugins load the vendor's libsisci (dlopen, then dlsym of the vendor link
 * names): every public function resolves under SCIxxx, _SISCI_PUBLIC_FUNC_ST_SCIxxx and
 * _SISCI_PUBLIC_FUNC_MT_SCIxxx, all three the same function, and the loaded ones work. */
#ifndef _GNU_SOURCE /* g++ defines it */
#define _GNU_SOURCE /* dladdr */
#endif
#include "compat.h"

#include <dlfcn.h>

#define COMPAT_NAME(n) #n,
static const char* const names[] = {
#include "sisci_names.h"
};
#undef COMPAT_NAME

static void* library = NULL;

static void* lookup(const char* prefix, const char* name) {
    char sym[128];
    snprintf(sym, sizeof sym, "%s%s", prefix, name);
    return dlsym(library, sym);
}

static void node_a(void) {
    size_t i;
    Dl_info info;
    void* sym;
    const char* (*error_string)(sci_error_t);
    void (*local_node_id)(unsigned int, unsigned int*, unsigned int, sci_error_t*);
    unsigned int id = 0;
    sci_error_t err;

    /* The library this program linked, opened again by its file name. */
    const char* (*linked)(sci_error_t) = SCIGetErrorString;
    void* addr;
    memcpy(&addr, &linked, sizeof addr); /* ISO C has no cast between the two */
    EXPECT(dladdr(addr, &info) != 0 && info.dli_fname != NULL);
    library = dlopen(info.dli_fname, RTLD_NOW | RTLD_LOCAL);
    EXPECT(library != NULL);
    if (library == NULL) {
        return;
    }
    for (i = 0; i < sizeof names / sizeof names[0]; ++i) {
        void* plain = lookup("", names[i]);
        void* st = lookup("_SISCI_PUBLIC_FUNC_ST_", names[i]);
        void* mt = lookup("_SISCI_PUBLIC_FUNC_MT_", names[i]);
        if (plain == NULL || st != plain || mt != plain) {
            fprintf(stderr, "%s: plain %p ST %p MT %p\n", names[i], plain, st, mt);
            ++compat_failures;
        }
    }
    sym = lookup("_SISCI_PUBLIC_FUNC_ST_", "SCIGetErrorString");
    memcpy(&error_string, &sym, sizeof error_string);
    EXPECT(error_string != NULL &&
           strcmp(error_string(SCI_ERR_BUSY), SCIGetErrorString(SCI_ERR_BUSY)) == 0);
    sym = lookup("_SISCI_PUBLIC_FUNC_ST_", "SCIGetLocalNodeId");
    memcpy(&local_node_id, &sym, sizeof local_node_id);
    if (local_node_id != NULL) {
        local_node_id(ADAPTER, &id, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
        EXPECT(id == NODE_A);
    }
    dlclose(library);
}

static void node_b(void) {
    unsigned int id = 0;
    sci_error_t err;
    SCIGetLocalNodeId(ADAPTER, &id, SCI_NO_FLAGS, &err);
    EXPECT(id == NODE_B);
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
