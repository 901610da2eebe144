/*
 * copy_fused.c: save one stack slice and restore another as two memcpy calls,
 * or swap them chunk by chunk (save chunk i of the leaving greenlet, then
 * restore chunk i of the arriving one) so each stack chunk is still in L1
 * when it is overwritten.
 *
 *   cc -O2 copy_fused.c -o /tmp/copy_fused && /tmp/copy_fused 250000
 *
 * CPU time, best of 5 batches, each variant twice.
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
  char *s = stack+192, *ha = a+192, *hb = b+192;
  for (int rep=0; rep<2; rep++) {
  double best=1e30;
  for(int r=0;r<5;r++){double t0=now(); for(int i=0;i<2000;i++){memcpy(ha,s,n);memcpy(s,hb,n);} double t=(now()-t0)/2000; if(t<best)best=t;}
  printf("separate: %.0f ns\n",best);
  size_t chunks[]={2048,4096,8192,16384,32768};
  for(int c=0;c<5;c++){size_t ch=chunks[c]; best=1e30;
  for(int r=0;r<5;r++){double t0=now(); for(int i=0;i<2000;i++){for(size_t off=0;off<n;off+=ch){size_t m=n-off<ch?n-off:ch;memcpy(ha+off,s+off,m);memcpy(s+off,hb+off,m);}} double t=(now()-t0)/2000; if(t<best)best=t;}
  printf("fused %5zu: %.0f ns\n",ch,best);}
  }
}
