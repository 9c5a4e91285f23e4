/* Interrupts and data interrupts: fixed and chosen numbers, waiting and callbacks,
 * connecting, triggering, payloads, disconnecting and removal. */
#include "compat.h"

#define IRQ_NO 5u
#define DATA_IRQ_NO 6u

static volatile int irq_calls = 0;

static sci_callback_action_t irq_cb(void* arg, sci_local_interrupt_t interrupt,
                                    sci_error_t status) {
    (void)interrupt;
    if (status == SCI_ERR_OK) {
        ++*(volatile int*)arg;
    }
    return SCI_CALLBACK_CONTINUE;
}

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_local_interrupt_t irq;
    sci_local_interrupt_t cb_irq;
    sci_local_data_interrupt_t dirq;
    unsigned int no = IRQ_NO;
    unsigned int cb_no = 0;
    unsigned int dno = DATA_IRQ_NO;
    char data[SCI_MAX_DATA_INTERRUPT_SIZE];
    unsigned int size = sizeof data;
    int i;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCICreateInterrupt(sd, &irq, ADAPTER, &no, SCI_NO_CALLBACK, NULL, SCI_FLAG_FIXED_INTNO, &err);
    EXPECT_OK(err);
    EXPECT(no == IRQ_NO);
    SCICreateInterrupt(sd, &cb_irq, ADAPTER, &cb_no, irq_cb, (void*)&irq_calls,
                       SCI_FLAG_USE_CALLBACK | SCI_FLAG_SHARED_INT, &err);
    EXPECT_OK(err);
    SCICreateDataInterrupt(sd, &dirq, ADAPTER, &dno, NULL, NULL,
                           SCI_FLAG_FIXED_INTNO | SCI_FLAG_DIS_SHARED_ACCESS, &err);
    EXPECT_OK(err);
    /* Tell node 8 the chosen number through the pipe: one byte is enough here. */
    {
        char c = (char)cb_no;
        EXPECT(cb_no < 128);
        if (write(compat_to_peer, &c, 1) != 1) {
            ++compat_failures;
        }
    }
    SCIWaitForInterrupt(irq, 10000, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIWaitForDataInterrupt(dirq, data, &size, 10000, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(size == 6 && memcmp(data, "hello", 6) == 0);
    for (i = 0; i < 1000 && irq_calls == 0; ++i) {
        usleep(10000);
    }
    EXPECT(irq_calls == 1);
    wait_peer(); /* node 8 disconnected */
    SCIWaitForInterrupt(irq, 0, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_TIMEOUT);
    SCIRemoveInterrupt(irq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIRemoveInterrupt(cb_irq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIRemoveDataInterrupt(dirq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

static void node_b(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_remote_interrupt_t irq;
    sci_remote_interrupt_t cb_irq;
    sci_remote_data_interrupt_t dirq;
    char c = 0;
    char hello[6] = "hello";
    struct pollfd pf;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    pf.fd = compat_from_peer;
    pf.events = POLLIN;
    pf.revents = 0;
    EXPECT(poll(&pf, 1, 30000) == 1 && read(compat_from_peer, &c, 1) == 1);
    SCIConnectInterrupt(sd, &irq, NODE_A, ADAPTER, IRQ_NO, 10000, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIConnectInterrupt(sd, &cb_irq, NODE_A, ADAPTER, (unsigned int)c, 10000, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIConnectDataInterrupt(sd, &dirq, NODE_A, ADAPTER, DATA_IRQ_NO, 10000, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCITriggerInterrupt(irq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCITriggerDataInterrupt(dirq, hello, sizeof hello, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCITriggerInterrupt(cb_irq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectInterrupt(irq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectInterrupt(cb_irq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectDataInterrupt(dirq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post();
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
