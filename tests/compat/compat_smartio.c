/* SmartIO: a device driver in user space, written against the vendor's SmartIO API. Node 8
 * lends an epf-test function (fdid 0x80000, the Linux pci-epf-test registers in BAR 0) and a
 * memory device (0x80001, one BAR of plain memory); run_compat.sh declares them. Node 4 finds
 * them, borrows the epf-test function exclusively, maps BAR 0, maps a local segment and a
 * private device segment for the device, runs COPY commands through the registers, checks the
 * data and the interrupts, and tears down in the vendor's order. Node 8 shows that an exclusive
 * borrow keeps others out until released, and that PIO on a shared device is seen by both. */
#include "compat.h"

#define FDID_EPF 0x80000u
#define FDID_MEM 0x80001u
#define PAGE 4096u

/* pci-epf-test registers (Linux 6.x drivers/pci/endpoint/functions/pci-epf-test.c). */
#define REG_MAGIC 0x00u
#define REG_COMMAND 0x04u
#define REG_STATUS 0x08u
#define REG_LOWER_SRC 0x0cu
#define REG_UPPER_SRC 0x10u
#define REG_LOWER_DST 0x14u
#define REG_UPPER_DST 0x18u
#define REG_SIZE 0x1cu
#define REG_IRQ_TYPE 0x24u
#define REG_IRQ_NUMBER 0x28u
#define REG_FLAGS 0x2cu
#define CMD_RAISE_INTX 0x01u
#define CMD_RAISE_MSI 0x02u
#define CMD_RAISE_MSIX 0x04u
#define CMD_COPY 0x20u
#define ST_COPY_SUCCESS 0x10u
#define ST_COPY_FAIL 0x20u
#define ST_IRQ_RAISED 0x40u
#define ST_DST_ADDR_INVALID 0x100u
#define FLAG_USE_DMA 0x1u

static volatile uint32_t* reg(volatile void* bar, unsigned int offset) {
    return (volatile uint32_t*)((volatile char*)bar + offset);
}

/* Runs one command and waits up to 10 s for STATUS; returns STATUS (0: no answer). */
static uint32_t run_command(volatile void* bar, uint32_t command, unsigned int irq_type,
                            unsigned int irq_number) {
    sci_error_t err;
    int i;
    *reg(bar, REG_STATUS) = 0;
    *reg(bar, REG_IRQ_TYPE) = irq_type;
    *reg(bar, REG_IRQ_NUMBER) = irq_number;
    SCIFlush(NULL, SCI_NO_FLAGS);
    *reg(bar, REG_COMMAND) = command;
    for (i = 0; i < 10000; ++i) {
        uint32_t status = *reg(bar, REG_STATUS);
        if (status != 0 && *reg(bar, REG_COMMAND) == 0) {
            return status;
        }
        usleep(1000);
        SCICacheSync(NULL, (void*)bar, 64, SCI_FLAG_CACHE_INVALIDATE, &err);
    }
    return 0;
}

static void set_copy(volatile void* bar, sci_ioaddr_t src, sci_ioaddr_t dst, uint32_t size) {
    *reg(bar, REG_LOWER_SRC) = (uint32_t)(src & 0xffffffffu);
    *reg(bar, REG_UPPER_SRC) = (uint32_t)(src >> 32);
    *reg(bar, REG_LOWER_DST) = (uint32_t)(dst & 0xffffffffu);
    *reg(bar, REG_UPPER_DST) = (uint32_t)(dst >> 32);
    *reg(bar, REG_SIZE) = size;
    *reg(bar, REG_FLAGS) = FLAG_USE_DMA;
}

/* The next device interrupt must be (type, number). */
static void expect_irq(sci_smartio_device_t dev, unsigned int type, unsigned int number) {
    sci_error_t err;
    unsigned int t = 99;
    unsigned int n = 99;
    SCIDisWaitForDeviceInterrupt(dev, &t, &n, 10000, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (t != type || n != number) {
        fprintf(stderr, "interrupt %u/%u, want %u/%u\n", t, n, type, number);
    }
    EXPECT(t == type && n == number);
}

static void discovery(sci_desc_t sd) {
    sci_error_t err;
    unsigned int ids[64];
    size_t n;
    sci_smartio_device_info_t filter;
    sci_smartio_device_info_t info;
    sci_smartio_query_device_t query;
    sci_query_dev_t old_query;
    sci_dev_info_t old_info;

    n = SCIGetDeviceList(sd, ids, 64, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(n == 2 && ids[0] == FDID_EPF && ids[1] == FDID_MEM);
    memset(&filter, 0, sizeof filter);
    filter.pci_class = 0xff0000u; /* pci-epf-test's class */
    n = SCIGetDeviceList(sd, ids, 64, &filter, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(n == 1 && ids[0] == FDID_EPF);
    memset(&filter, 0, sizeof filter);
    strcpy(filter.user_name, "mem0");
    n = SCIGetDeviceList(sd, ids, 64, &filter, SCI_NO_FLAGS, &err);
    EXPECT(err == SCI_ERR_OK && n == 1 && ids[0] == FDID_MEM);
    filter.pci_vendor_id = 0x104cu; /* every set field must match */
    n = SCIGetDeviceList(sd, ids, 64, &filter, SCI_NO_FLAGS, &err);
    EXPECT(err == SCI_ERR_OK && n == 0);
    /* A short array: the count says how many there are. */
    n = SCIGetDeviceList(sd, ids, 1, NULL, SCI_NO_FLAGS, &err);
    EXPECT(err == SCI_ERR_OK && n == 2 && ids[0] == FDID_EPF);

    memset(&query, 0, sizeof query);
    query.subcommand = SCI_Q_DEVICE_INFO;
    query.fdid = FDID_EPF;
    query.data = &info;
    SCIQuery(SCI_Q_DEVICE, &query, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(info.fdid == FDID_EPF && info.nodeid == NODE_B && info.adapter == ADAPTER);
    EXPECT(info.pci_vendor_id == 0x104cu && info.pci_device_id == 0xb500u);
    EXPECT(info.pci_class == 0xff0000u && info.num_bars == 6 && strcmp(info.user_name, "ep0") == 0);
    /* The SISCI 4.x names of the same query. */
    old_query.subcommand = SCI_Q_DEVICE_INFO;
    old_query.global_devid = FDID_MEM;
    old_query.data = &old_info;
    SCIQuery(SCI_Q_DEVICE, &old_query, SCI_NO_FLAGS, &err);
    EXPECT(err == SCI_ERR_OK && old_info.fdid == FDID_MEM && old_info.num_bars == 1);
    query.fdid = 0x80009u;
    SCIQuery(SCI_Q_DEVICE, &query, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NO_SUCH_FDID);
    query.fdid = FDID_EPF;
    query.subcommand = 0x7777u;
    SCIQuery(SCI_Q_DEVICE, &query, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_QUERY);
    EXPECT(strcmp(SCIGetErrorString(SCI_ERR_NO_SUCH_FDID), "Unknown error") != 0);
}

/* BAR 0, a local segment and a private device segment mapped for the device; COPY local ->
 * local, local -> device memory, a bad destination; interrupts of each kind. */
static void drive_epf(sci_desc_t sd, sci_smartio_device_t dev) {
    sci_error_t err;
    sci_remote_segment_t bar_seg;
    sci_remote_segment_t priv_seg;
    sci_local_segment_t local;
    sci_map_t bar_map;
    sci_map_t local_map;
    sci_map_t priv_map;
    volatile void* bar;
    volatile unsigned char* mem;
    volatile unsigned char* priv;
    sci_ioaddr_t io_local = 0;
    sci_ioaddr_t io_priv = 0;
    sci_ioaddr_t io_again = 0;
    uint32_t status;
    unsigned int i;
    int same = 1;

    SCIConnectDeviceSegment(dev, &bar_seg, 0, SCI_MEMTYPE_BAR, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (err != SCI_ERR_OK) {
        return;
    }
    EXPECT(SCIGetRemoteSegmentSize(bar_seg) == 512 && SCIGetRemoteSegmentNodeId(bar_seg) == NODE_B);
    bar = SCIMapRemoteSegment(bar_seg, &bar_map, 0, 512, NULL, SCI_FLAG_IO_MAP_IOSPACE, &err);
    EXPECT_OK(err);
    if (bar == NULL) {
        return;
    }
    *reg(bar, REG_MAGIC) = 0;

    SCICreateSegment(sd, &local, 0x5100, 2 * PAGE, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIPrepareSegment(local, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCISetSegmentAvailable(local, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    mem = (volatile unsigned char*)SCIMapLocalSegment(local, &local_map, 0, 2 * PAGE, NULL,
                                                      SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (mem == NULL) {
        return;
    }
    for (i = 0; i < PAGE; ++i) {
        mem[i] = (unsigned char)(i * 7 + 3);
        mem[PAGE + i] = 0;
    }
    SCIMapLocalSegmentForDevice(local, ADAPTER, dev, &io_local, 0, 0, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    /* Mapping it again for the same device gives the same address. */
    SCIMapLocalSegmentForDevice(local, ADAPTER, dev, &io_again, 0, 2 * PAGE, SCI_NO_FLAGS, &err);
    EXPECT(err == SCI_ERR_OK && io_again == io_local);
    SCIUnmapLocalSegmentForDevice(local, ADAPTER, dev, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    /* COPY page 0 -> page 1 of the local segment, by the device's DMA, MSI 1 when done. */
    set_copy(bar, io_local, io_local + PAGE, PAGE);
    status = run_command(bar, CMD_COPY, SCI_DIS_DEVICE_IRQ_MSI, 1);
    EXPECT((status & ST_COPY_SUCCESS) != 0 && (status & ST_IRQ_RAISED) != 0);
    SCICacheSync(local_map, (void*)mem, 2 * PAGE, SCI_FLAG_CACHE_INVALIDATE, &err);
    EXPECT_OK(err);
    for (i = 0; i < PAGE; ++i) {
        same = same && mem[PAGE + i] == (unsigned char)(i * 7 + 3);
    }
    EXPECT(same);
    expect_irq(dev, SCI_DIS_DEVICE_IRQ_MSI, 1);

    /* Device memory: created for this borrower, connected, mapped for the CPU and the device. */
    SCICreateDeviceSegment(dev, 1, PAGE, SCI_MEMTYPE_PRIVATE,
                           SCI_MEMACCESS_DEVICE_WRITE | SCI_MEMACCESS_HOST_READ,
                           SCI_FLAG_DEVICE_SIDE_ONLY, &err);
    EXPECT_OK(err);
    SCIConnectDeviceSegment(dev, &priv_seg, 1, SCI_MEMTYPE_PRIVATE, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (err != SCI_ERR_OK) {
        return; /* the rest depends on it */
    }
    priv = (volatile unsigned char*)SCIMapRemoteSegment(priv_seg, &priv_map, 0, PAGE, NULL,
                                                        SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIMapRemoteSegmentForDevice(priv_seg, dev, &io_priv, 0, PAGE, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (priv == NULL || err != SCI_ERR_OK) {
        return;
    }
    set_copy(bar, io_local, io_priv, PAGE);
    status = run_command(bar, CMD_COPY, SCI_DIS_DEVICE_IRQ_MSIX, 3);
    EXPECT((status & ST_COPY_SUCCESS) != 0);
    same = 1;
    for (i = 0; i < PAGE; ++i) {
        same = same && priv[i] == (unsigned char)(i * 7 + 3);
    }
    EXPECT(same);
    expect_irq(dev, SCI_DIS_DEVICE_IRQ_MSIX, 3);

    /* An address nobody mapped for the device: the device refuses it, memory is untouched. */
    set_copy(bar, io_local, 0x1000u, 64);
    status = run_command(bar, CMD_COPY, SCI_DIS_DEVICE_IRQ_INTX, 1);
    EXPECT((status & ST_COPY_FAIL) != 0 && (status & ST_DST_ADDR_INVALID) != 0);
    expect_irq(dev, SCI_DIS_DEVICE_IRQ_INTX, 0); /* INTX has no vector */
    /* Raised on demand. */
    status = run_command(bar, CMD_RAISE_INTX, SCI_DIS_DEVICE_IRQ_INTX, 1);
    EXPECT((status & ST_IRQ_RAISED) != 0);
    expect_irq(dev, SCI_DIS_DEVICE_IRQ_INTX, 0); /* INTX has no vector */
    (void)run_command(bar, CMD_RAISE_MSI, SCI_DIS_DEVICE_IRQ_MSI, 2);
    expect_irq(dev, SCI_DIS_DEVICE_IRQ_MSI, 2);
    (void)run_command(bar, CMD_RAISE_MSIX, SCI_DIS_DEVICE_IRQ_MSIX, 7);
    expect_irq(dev, SCI_DIS_DEVICE_IRQ_MSIX, 7);
    SCIDisWaitForDeviceInterrupt(dev, NULL, NULL, 0, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_TIMEOUT);

    /* The teardown rules (sisci-smartio(7)): what was made with the device goes first. */
    SCIReturnDevice(dev, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_BUSY);
    SCIRemoveSegment(local, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_BUSY); /* mapped for the device */
    SCIUnmapSegment(priv_map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectSegment(priv_seg, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_BUSY); /* mapped for the device */
    SCIUnmapRemoteSegmentForDevice(priv_seg, dev, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnmapRemoteSegmentForDevice(priv_seg, dev, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NOT_CONNECTED);
    SCIDisconnectSegment(priv_seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnmapLocalSegmentForDevice(local, ADAPTER, dev, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnmapSegment(local_map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIRemoveSegment(local, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnmapSegment(bar_map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectSegment(bar_seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

/* Device segment and borrow arguments the API refuses. */
static void refusals(sci_desc_t sd, sci_smartio_device_t dev) {
    sci_error_t err;
    sci_remote_segment_t seg;
    sci_device_t old_name = dev; /* the SISCI 4.x type name */

    SCIConnectDeviceSegment(dev, &seg, 0, SCI_MEMTYPE_BAR, NULL, NULL, SCI_FLAG_SPECIFY_PATH, &err);
    EXPECT_ERR(err, SCI_ERR_FLAG_NOT_IMPLEMENTED);
    SCIConnectDeviceSegment(dev, &seg, 0, SCI_MEMTYPE_BAR, NULL, NULL, SCI_FLAG_SPECIFY_SLOT, &err);
    EXPECT_ERR(err, SCI_ERR_FLAG_NOT_IMPLEMENTED);
    SCIConnectDeviceSegment(dev, &seg, 0, 0x40u, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_PARAMETER);
    SCICreateDeviceSegment(dev, 2, PAGE, SCI_MEMTYPE_BAR, 0, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_PARAMETER);
    SCICreateDeviceSegment(dev, 2, PAGE, SCI_MEMTYPE_PRIVATE, SCI_MEMACCESS_HOST_WRITE,
                           SCI_FLAG_EXCLUSIVE, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_FLAG);
    /* Shared device memory: one per id; every placement flag and hint is accepted. */
    SCICreateDeviceSegment(dev, 7, PAGE, SCI_MEMTYPE_SHARED,
                           SCI_MEMACCESS_HOST_WRITE | SCI_MEMACCESS_MULTIHOST_READ |
                               SCI_MEMACCESS_MULTIHOST_WRITE | SCI_MEMACCESS_P2P_READ |
                               SCI_MEMACCESS_P2P_WRITE | SCI_MEMACCESS_DEVICE_READ,
                           SCI_FLAG_LOCAL_ONLY | SCI_FLAG_DEVICE_PREFER_BANDWIDTH, &err);
    EXPECT_OK(err);
    SCICreateDeviceSegment(dev, 7, PAGE, SCI_MEMTYPE_SHARED, SCI_MEMACCESS_HOST_READ,
                           SCI_FLAG_HOST_PREFER_BANDWIDTH, &err);
    EXPECT_ERR(err, SCI_ERR_SEGMENTID_USED);
    /* The SISCI 4.x call for a BAR. */
    SCIConnectDeviceMemory(sd, &seg, ADAPTER, old_name, 1, 0, SCI_FLAG_BAR, &err);
    EXPECT_OK(err);
    EXPECT(SCIGetRemoteSegmentSize(seg) == 512);
    SCIDisconnectSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIConnectDeviceSegment(dev, &seg, 9, SCI_MEMTYPE_BAR, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT(err != SCI_ERR_OK); /* epf-test has 6 BARs */
    SCIReleaseExclusiveBorrow(NULL, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_PARAMETER);
    EXPECT(SCIGetFabricDeviceId(NULL) == 0);

    /* A PCIe requester (a local GPU, say) is registered and unregistered around its use. */
    SCIRegisterPCIeRequester(sd, ADAPTER, 0x21, 0x08, SCI_FLAG_PCIE_REQUESTER_GLOBAL, &err);
    EXPECT_OK(err);
    SCIRegisterPCIeRequester(sd, ADAPTER, 0x21, 0x08, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_OPERATION);
    SCIUnregisterPCIeRequester(sd, ADAPTER, 0x21, 0x08, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnregisterPCIeRequester(sd, ADAPTER, 0x21, 0x08, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_PARAMETER);
}

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_smartio_device_t dev;
    sci_smartio_device_t other;
    sci_remote_segment_t mem_seg;
    sci_map_t mem_map;
    volatile uint32_t* word;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    discovery(sd);
    SCIBorrowDevice(sd, &dev, 0x80009u, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NO_SUCH_FDID);
    SCIBorrowDevice(sd, &dev, 0xC0000u, SCI_NO_FLAGS, &err); /* node 12 does not exist */
    EXPECT_ERR(err, SCI_ERR_NO_SUCH_FDID);
    SCIBorrowDevice(sd, &dev, FDID_EPF, SCI_FLAG_EXCLUSIVE, &err);
    EXPECT_OK(err);
    if (err != SCI_ERR_OK) {
        post();
        wait_peer();
        post();
        wait_peer();
        SCIClose(sd, SCI_NO_FLAGS, &err);
        return;
    }
    EXPECT(SCIGetFabricDeviceId(dev) == FDID_EPF);
    SCIBorrowDevice(sd, &other, FDID_EPF, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NOT_AVAILABLE); /* at once, not after a wait */
    post();                                 /* 1: node 8 tries while it is exclusive */
    wait_peer();
    drive_epf(sd, dev);
    refusals(sd, dev);
    SCIReleaseExclusiveBorrow(dev, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIReleaseExclusiveBorrow(dev, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_OPERATION); /* shared already */
    post(); /* 2: node 8 borrows it shared now, and the memory device */
    wait_peer();
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_BUSY); /* the device handle is alive */
    SCIReturnDevice(dev, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    /* The memory device, shared with node 8: a store here is a load there. */
    SCIBorrowDevice(sd, &dev, FDID_MEM, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIConnectDeviceSegment(dev, &mem_seg, 0, SCI_MEMTYPE_BAR, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    word =
        (volatile uint32_t*)SCIMapRemoteSegment(mem_seg, &mem_map, 64, 4, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    *word = 0x5eed1234u;
    SCIFlush(NULL, SCI_NO_FLAGS);
    post(); /* 3 */
    wait_peer();
    EXPECT(*word == 0xfeedf00du); /* node 8's answer */
    SCIUnmapSegment(mem_map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectSegment(mem_seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIReturnDevice(dev, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

static void node_b(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_smartio_device_t epf;
    sci_smartio_device_t mem;
    sci_remote_segment_t seg;
    sci_map_t map;
    volatile uint32_t* word;
    int i;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    wait_peer(); /* 1 */
    SCIBorrowDevice(sd, &epf, FDID_EPF, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NOT_AVAILABLE);
    post();
    wait_peer(); /* 2: released to shared */
    SCIBorrowDevice(sd, &epf, FDID_EPF, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (err == SCI_ERR_OK) {
        SCIReturnDevice(epf, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
    }
    SCIBorrowDevice(sd, &mem, FDID_MEM, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIConnectDeviceSegment(mem, &seg, 0, SCI_MEMTYPE_BAR, NULL, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    word = (volatile uint32_t*)SCIMapRemoteSegment(seg, &map, 64, 4, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post();
    wait_peer(); /* 3: node 4 stored */
    for (i = 0; i < 1000 && *word != 0x5eed1234u; ++i) {
        usleep(1000);
    }
    EXPECT(*word == 0x5eed1234u);
    *word = 0xfeedf00du;
    SCIFlush(NULL, SCI_NO_FLAGS);
    post();
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIReturnDevice(mem, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
