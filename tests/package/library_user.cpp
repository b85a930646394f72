// A program that links only the user's library (STATIC, SHARED or OBJECT): the kernels come through it.
int consumer_library_check(const char* who);
int main() { return consumer_library_check(CONSUMER_LIBRARY_KIND); }
