// disd: one node of the software fabric (stub until the daemon lands).
int main() {
    return 0;
}
