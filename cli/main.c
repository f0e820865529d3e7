/* tidewatch: the investigator's and operator's client. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tidewatch: no commands yet\n");
    return 2;
}
