/* Built against an installed libsisci by check_install.sh: the headers as the vendor's build
 * files include them, one call into the library (no fabric needed). */
#include <dis_types.h>
#include <sisci_api.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    const char* s = SCIGetErrorString(SCI_ERR_BUSY);
    dis_nodeId_list_t list;
    memset(list, 0, sizeof list);
    if (s == NULL || s[0] == '\0' || list[0] != 0 || DIS_DMA_MAX_VECLEN < 1) {
        return 1;
    }
    printf("libsisci: %s\n", s);
    return 0;
}
