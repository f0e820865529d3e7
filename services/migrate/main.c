/* tidewatch-migrate: applies migrations/ in order. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "tidewatch-migrate: not implemented yet\n");
    return 2;
}
