/*
 * copy_phase.c: does the address phase between a stack slice and its heap
 * copy change the cost of saving one slice and restoring another?
 *
 *   cc -O2 copy_phase.c -o /tmp/copy_phase && /tmp/copy_phase 250000
 *
 * Prints ns per save (stack -> heap) + restore (heap -> stack) of N bytes for
 * several values of (heap address - stack address) mod 4096.  Phases just
 * below a multiple of 4096 suffer from 4K aliasing.  CPU time, best of 5.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(int argc,char**argv){
  size_t n = argc>1?atol(argv[1]):250000;
  char *stack = aligned_alloc(4096, n+8192), *a = aligned_alloc(4096, n+8192), *b = aligned_alloc(4096, n+8192);
  memset(stack,1,n+8192);memset(a,2,n+8192);memset(b,3,n+8192);
  int offs[] = {0, 8, 16, 32, 64, 128, 512, 1024, 2048, 3072, 4032, 4064, 4088};
  for (int k=0;k<13;k++){ int o=offs[k];
    char *s = stack + 200; /* stack slice start, some odd offset */
    double best=1e30;
    for(int r=0;r<5;r++){double t0=now();
      for(int i=0;i<2000;i++){ memcpy(a+((200+o)&4095), s, n); memcpy(s, b+((200+o)&4095), n);} 
      double t=(now()-t0)/2000; if(t<best)best=t;}
    printf("heap-stack offset mod 4096 = %4d: %.0f ns per save+restore of %zu B\n", o, best, n);
  }
}
