/* Library, descriptors, nodes, queries, error texts and the constant values. */
#include "compat.h"

/* Flag and constant values are the vendor's (publicly known ones), so programs that store or
 * print them agree with the vendor's SISCI. */
static void check_values(void) {
    EXPECT(SCI_NO_FLAGS == 0u);
    EXPECT(SCI_INFINITE_TIMEOUT == 0xffffffffu);
    EXPECT(DIS_BROADCAST_NODEID_GROUP_ALL == 252u);
    EXPECT(SCI_FLAG_USE_CALLBACK == 0x1u);
    EXPECT(SCI_FLAG_EMPTY == 0x2u);
    EXPECT(SCI_FLAG_PRIVATE == 0x4u);
    EXPECT(SCI_FLAG_DMA_SOURCE_ONLY == 0x8u);
    EXPECT(SCI_FLAG_AUTO_ID == 0x20000000u);
    EXPECT(SCI_FLAG_BROADCAST == 0x40000u);
    EXPECT(SCI_FLAG_LOCK_USER_MEM == 0x400u);
    EXPECT(SCI_FLAG_PHYSICAL == 0x1000u);
    EXPECT(SCI_FLAG_CUDA_BUFFER == 0x2000u);
    EXPECT(SCI_FLAG_FORCE_REMOVE == 0x20u);
    EXPECT(SCI_FLAG_FIXED_MAP_ADDR == 0x1u);
    EXPECT(SCI_FLAG_READONLY_MAP == 0x2u);
    EXPECT(SCI_FLAG_LOCK_OPERATION == 0x4u);
    EXPECT(SCI_FLAG_IO_MAP_IOSPACE == 0x80u);
    EXPECT(SCI_FLAG_NO_MEMORY_LOOPBACK == 0x800u);
    EXPECT(SCI_FLAG_SHARED_MAP == 0x2000u);
    EXPECT(SCI_FLAG_FIXED_INTNO == 0x2u);
    EXPECT(SCI_FLAG_SHARED_INT == 0x4u);
    EXPECT(SCI_FLAG_DMA_WAIT == 0x4u);
    EXPECT(SCI_FLAG_DMA_READ == 0x10u);
    EXPECT(SCI_FLAG_DMA_PHDMA == 0x20u);
    EXPECT(SCI_FLAG_DMA_GLOBAL == 0x40u);
    EXPECT(SCI_FLAG_DMA_SYSDMA == 0x100u);
    EXPECT(SCI_FLAG_DMA_ADAPTER == 0x800u);
    EXPECT(SCI_FLAG_CACHE_FLUSH == 0x100000u);
    EXPECT(SCI_FLAG_CACHE_INVALIDATE == 0x200000u);
    /* This implementation's own values: distinct from the flags of the same functions. */
    EXPECT((SCI_FLAG_NOTIFY & SCI_FLAG_FORCE_DISCONNECT) == 0u);
    EXPECT((SCI_FLAG_SHARED & (SCI_FLAG_USE_CALLBACK | SCI_FLAG_BROADCAST)) == 0u);
    EXPECT(((SCI_FLAG_BLOCK_READ | SCI_FLAG_ERROR_CHECK) &
            (SCI_FLAG_NO_FLUSH | SCI_FLAG_NO_STORE_BARRIER | SCI_FLAG_FLUSH_CPU_BUFFERS_ONLY)) ==
           0u);
    EXPECT((SCI_FLAG_DIS_SHARED_ACCESS & (SCI_FLAG_AUTO_ID | SCI_FLAG_BROADCAST)) == 0u);
    EXPECT(SCI_MAX_DATA_INTERRUPT_SIZE >= 64u);
    EXPECT(DIS_MAX_NSCIS >= 2);
    EXPECT(DIS_DMA_MAX_VECLEN >= 1);
    EXPECT(SCI_NO_CALLBACK == NULL);
}

/* Every error code has its own text. */
static void check_error_strings(void) {
    static const sci_error_t codes[] = {SCI_ERR_OK,
                                        SCI_ERR_BUSY,
                                        SCI_ERR_FLAG_NOT_IMPLEMENTED,
                                        SCI_ERR_ILLEGAL_FLAG,
                                        SCI_ERR_NOSPC,
                                        SCI_ERR_API_NOSPC,
                                        SCI_ERR_HW_NOSPC,
                                        SCI_ERR_NOT_IMPLEMENTED,
                                        SCI_ERR_ILLEGAL_ADAPTERNO,
                                        SCI_ERR_NO_SUCH_ADAPTERNO,
                                        SCI_ERR_TIMEOUT,
                                        SCI_ERR_OUT_OF_RANGE,
                                        SCI_ERR_NO_SUCH_SEGMENT,
                                        SCI_ERR_ILLEGAL_NODEID,
                                        SCI_ERR_CONNECTION_REFUSED,
                                        SCI_ERR_SEGMENT_NOT_CONNECTED,
                                        SCI_ERR_SIZE_ALIGNMENT,
                                        SCI_ERR_OFFSET_ALIGNMENT,
                                        SCI_ERR_ILLEGAL_PARAMETER,
                                        SCI_ERR_MAX_ENTRIES,
                                        SCI_ERR_SEGMENT_NOT_PREPARED,
                                        SCI_ERR_ILLEGAL_ADDRESS,
                                        SCI_ERR_ILLEGAL_OPERATION,
                                        SCI_ERR_ILLEGAL_QUERY,
                                        SCI_ERR_SEGMENTID_USED,
                                        SCI_ERR_SYSTEM,
                                        SCI_ERR_CANCELLED,
                                        SCI_ERR_NOT_CONNECTED,
                                        SCI_ERR_NOT_AVAILABLE,
                                        SCI_ERR_INCONSISTENT_VERSIONS,
                                        SCI_ERR_COND_INT_RACE_PROBLEM,
                                        SCI_ERR_OVERFLOW,
                                        SCI_ERR_NOT_INITIALIZED,
                                        SCI_ERR_ACCESS,
                                        SCI_ERR_NOT_SUPPORTED,
                                        SCI_ERR_DEPRECATED,
                                        SCI_ERR_DMA_NOT_AVAILABLE,
                                        SCI_ERR_DMA_DISABLED,
                                        SCI_ERR_NO_SUCH_NODEID,
                                        SCI_ERR_NODE_NOT_RESPONDING,
                                        SCI_ERR_NO_REMOTE_LINK_ACCESS,
                                        SCI_ERR_NO_LINK_ACCESS,
                                        SCI_ERR_TRANSFER_FAILED,
                                        SCI_ERR_EWOULD_BLOCK,
                                        SCI_ERR_SEMAPHORE_COUNT_EXCEEDED,
                                        SCI_ERR_IRQL_ILLEGAL,
                                        SCI_ERR_REMOTE_BUSY,
                                        SCI_ERR_LOCAL_BUSY,
                                        SCI_ERR_ALL_BUSY};
    size_t i;
    EXPECT(SCI_ERR_NO_SUCH_INTNO == SCI_ERR_NO_SUCH_SEGMENT); /* the vendor's codes */
    for (i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
        const char* s = SCIGetErrorString(codes[i]);
        EXPECT(s != NULL && s[0] != '\0');
        if (i > 0 && s != NULL) {
            EXPECT(strcmp(s, SCIGetErrorString(codes[0])) != 0);
        }
    }
}

static void check_queries(sci_desc_t sd) {
    sci_error_t err;
    char text[256];
    sci_query_string_t qs;
    sci_query_adapter_t qa;
    sci_query_system_t qsys;
    sci_query_dma_t qd;
    sci_dma_capabilities_t caps;
    unsigned int value = 0;
    size_t i;
    static const unsigned int adapter_queries[] = {SCI_Q_ADAPTER_NODEID,
                                                   SCI_Q_ADAPTER_SERIAL_NUMBER,
                                                   SCI_Q_ADAPTER_CARD_TYPE,
                                                   SCI_Q_ADAPTER_CONFIGURED,
                                                   SCI_Q_ADAPTER_NUMBER_OF_LINKS,
                                                   SCI_Q_ADAPTER_DMA_SIZE_ALIGNMENT,
                                                   SCI_Q_ADAPTER_DMA_OFFSET_ALIGNMENT,
                                                   SCI_Q_ADAPTER_SUGGESTED_MIN_DMA_SIZE,
                                                   SCI_Q_ADAPTER_DMA_MTU,
                                                   SCI_Q_ADAPTER_BDF,
                                                   SCI_Q_ADAPTER_MCAST_MAX_GROUPS};
    static const unsigned int system_queries[] = {SCI_Q_SYSTEM_CPU_CACHE_LINE_SIZE,
                                                  SCI_Q_SYSTEM_WRITE_POSTING_ENABLED,
                                                  SCI_Q_SYSTEM_WRITE_COMBINING_ENABLED};
    (void)sd;

    qs.str = text;
    qs.length = sizeof text;
    SCIQuery(SCI_Q_VENDORID, &qs, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(text[0] != '\0');
    SCIQuery(SCI_Q_API, &qs, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    qa.localAdapterNo = ADAPTER;
    qa.portNo = 0;
    qa.data = &value;
    for (i = 0; i < sizeof adapter_queries / sizeof adapter_queries[0]; ++i) {
        qa.subcommand = adapter_queries[i];
        SCIQuery(SCI_Q_ADAPTER, &qa, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
        if (adapter_queries[i] == SCI_Q_ADAPTER_NODEID) {
            EXPECT(value == compat_node);
        }
        if (adapter_queries[i] == SCI_Q_ADAPTER_CARD_TYPE) {
            EXPECT(value == DIS_ADAPTER_SOFTWARE_FABRIC);
            EXPECT(strcmp(SCIGetAdapterTypeString(value), SCIGetAdapterTypeString(0)) != 0);
        }
    }
    /* Link queries: portNo selects the link (node 4 has one, to node 8). */
    qa.subcommand = SCI_Q_ADAPTER_LINK_OPERATIONAL;
    SCIQuery(SCI_Q_ADAPTER, &qa, SCI_NO_FLAGS, &err);
    if (err == SCI_ERR_OK) {
        qa.subcommand = SCI_Q_ADAPTER_LINK_WIDTH;
        SCIQuery(SCI_Q_ADAPTER, &qa, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
        qa.subcommand = SCI_Q_ADAPTER_LINK_SPEED;
        SCIQuery(SCI_Q_ADAPTER, &qa, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
    } else {
        EXPECT_ERR(err, SCI_ERR_OUT_OF_RANGE);
    }

    qsys.data = &value;
    for (i = 0; i < sizeof system_queries / sizeof system_queries[0]; ++i) {
        qsys.subcommand = system_queries[i];
        SCIQuery(SCI_Q_SYSTEM, &qsys, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
    }

    qd.localAdapterNo = ADAPTER;
    qd.subcommand = SCI_Q_DMA_AVAILABLE;
    qd.data = &value;
    SCIQuery(SCI_Q_DMA, &qd, SCI_FLAG_DMA_ADAPTER, &err);
    EXPECT_OK(err);
    EXPECT(value == 1);
    memset(&caps, 0, sizeof caps);
    qd.subcommand = SCI_Q_DMA_CAPABILITIES;
    qd.data = &caps;
    SCIQuery(SCI_Q_DMA, &qd, SCI_FLAG_DMA_SYSDMA, &err);
    EXPECT_OK(err);
    EXPECT(caps.max_vector_length == DIS_DMA_MAX_VECLEN);
    EXPECT(caps.max_transfer_size > 0 && caps.supports_read == 1 && caps.supports_vector == 1);
    EXPECT(caps.offset_alignment >= 1 && caps.size_alignment >= 1);
    EXPECT(caps.suggested_min_size > 0);
    SCIQuery(SCI_Q_DMA, &qd, SCI_FLAG_DMA_GLOBAL, &err);
    EXPECT_OK(err);
}

/* Node lookup by the names of the fabric config ("alpha" = 4, "beta" = 8). */
static void check_names(void) {
    sci_error_t err;
    dis_nodeId_list_t list;
    dis_virt_adapter_t type;
    dis_adapter_type_t type2;
    unsigned int adapters[DIS_MAX_NSCIS];
    char name[16];

    strcpy(name, "beta");
    SCIGetNodeIdByAdapterName(name, &list, &type, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(list[0] == NODE_B);
    EXPECT(list[1] == 0);
    EXPECT(type == DIS_VIRT_ADAPTER_SOFTWARE_FABRIC);
    SCIGetNodeInfoByAdapterName("alpha", adapters, &list, &type2, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(list[0] == NODE_A);
    EXPECT(adapters[0] == ADAPTER);
    SCIGetNodeIdByAdapterName("no-such-node", &list, &type, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(list[0] == 0);
    EXPECT(type == DIS_VIRT_ADAPTER_UNKNOWN);
}

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    unsigned int id = 0;
    check_values();
    check_error_strings();
    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIGetLocalNodeId(ADAPTER, &id, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(id == NODE_A);
    EXPECT(SCIProbeNode(sd, ADAPTER, NODE_B, SCI_NO_FLAGS, &err) == 1);
    EXPECT_OK(err);
    EXPECT(SCIProbeNode(sd, ADAPTER, 400, SCI_NO_FLAGS, &err) == 0);
    EXPECT_ERR(err, SCI_ERR_NO_SUCH_NODEID);
    check_queries(sd);
    check_names();
    post();      /* node 8 may go */
    wait_peer(); /* and has */
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

static void node_b(void) {
    sci_error_t err;
    sci_desc_t sd;
    unsigned int id = 0;
    wait_peer();
    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIGetLocalNodeId(ADAPTER, &id, SCI_NO_FLAGS, &err);
    EXPECT(id == NODE_B);
    EXPECT(SCIProbeNode(sd, ADAPTER, NODE_A, SCI_NO_FLAGS, &err) == 1);
    check_queries(sd);
    check_names();
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post();
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
