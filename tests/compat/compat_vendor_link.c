/* Built the way the vendor's headers build a program: vendor_rename.h (generated from
 * sisci_api.h) maps every SCIxxx to _SISCI_EXPANDE_FUNCTION_NAME(SCIxxx), i.e.
 * _SISCI_PUBLIC_FUNC_ST_SCIxxx (_MT_ with -D_REENTRANT, as the C++ build of this program is).
 * That it links and runs at all shows libsisci exports those names. */
#include "vendor_rename.h"

#include "compat.h"

#define COMPAT_STR2(x) #x
#define COMPAT_STR(x) COMPAT_STR2(x)

/* Every public function, by its link name. */
#define COMPAT_NAME(n) (void (*)(void)) n,
static void (*const all_functions[])(void) = {
#include "sisci_names.h"
};
#undef COMPAT_NAME

#define SEG_ID 50u

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_local_segment_t seg;
    sci_map_t map;
    volatile unsigned int* p;
    size_t i;
#if defined(_REENTRANT)
    EXPECT(strcmp(COMPAT_STR(SCIInitialize), "_SISCI_PUBLIC_FUNC_MT_SCIInitialize") == 0);
#else
    EXPECT(strcmp(COMPAT_STR(SCIInitialize), "_SISCI_PUBLIC_FUNC_ST_SCIInitialize") == 0);
#endif
    for (i = 0; i < sizeof all_functions / sizeof all_functions[0]; ++i) {
        EXPECT(all_functions[i] != NULL);
    }
    EXPECT(sizeof all_functions / sizeof all_functions[0] >= 59);
    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCICreateSegment(sd, &seg, SEG_ID, 4096, SCI_NO_CALLBACK, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIPrepareSegment(seg, ADAPTER, SCI_NO_FLAGS, &err);
    SCISetSegmentAvailable(seg, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    p = (volatile unsigned int*)SCIMapLocalSegment(seg, &map, 0, 4096, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    p[0] = 0;
    post();
    wait_peer();
    EXPECT(p[0] == 0xC0FFEEu);
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    SCIRemoveSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

static void node_b(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_remote_segment_t rs;
    sci_map_t map;
    volatile unsigned int* p;
    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    wait_peer();
    SCIConnectSegment(sd, &rs, NODE_A, SEG_ID, ADAPTER, SCI_NO_CALLBACK, NULL, 10000, SCI_NO_FLAGS,
                      &err);
    EXPECT_OK(err);
    p = (volatile unsigned int*)SCIMapRemoteSegment(rs, &map, 0, 4096, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (p != NULL) {
        p[0] = 0xC0FFEEu;
    }
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    SCIDisconnectSegment(rs, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    post();
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
