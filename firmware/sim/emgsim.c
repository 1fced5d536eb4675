/*
 * emgsim: run the emg_acquire firmware (the real ELF) in simavr, with analog inputs from a file
 * and the UART on a pseudo-terminal that any serial program (pyserial) can open.
 *
 *   emgsim [-i input.u16] [-c cols] [-m sample|time] [-r input_hz] [-t seconds] [-R] [-x speed]
 *          [-l link] [-S stats] firmware.elf
 *
 *   -i FILE   analog input: little-endian uint16 millivolts at the ADC pins, row-major, one row
 *             per sample instant, `cols` values per row (column c feeds ADC channel c).
 *             Without -i every channel reads 2500 mV (mid-rail).  The file loops at its end.
 *   -c N      columns in the input file (default 8).
 *   -m MODE   `sample` (default): the k-th conversion of channel c reads row k, column c, so the
 *             firmware's sample k sees row k exactly.  `time`: row = floor(t * input_hz) at the
 *             simulated instant the conversion starts.
 *   -r HZ     input rate for -m time (default 1000).
 *   -t SEC    stop after SEC simulated seconds (default: run until killed).
 *   -R        pace the simulation to real time (else it runs as fast as it can, and waits for
 *             the reader when the pty is full: nothing is lost, simulated time just stops).
 *   -x SPEED  with -R, run at SPEED x real time (default 1).
 *   -l PATH   also make PATH a symlink to the pty.
 *   -S FILE   write statistics at exit (key=value lines).
 *
 * On start it prints `PTY <path>` on stdout.  While no program has the pty open, UART output is
 * discarded, like a board whose USB cable is unplugged.
 *
 * simavr facts this relies on (docs/toolchain.md): the ADC result is computed when ADCL is read,
 * from the value last raised on ADC_IRQ_ADCn; ADC_IRQ_OUT_TRIGGER fires when a conversion starts
 * and tells the channel.  vcc = avcc = aref = 5000 mV, or the ADC assumes 3300 mV.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_adc.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>

#define F_CPU 16000000UL
#define N_ADC 8
#define OUT_CAP (1 << 16)

static avr_t *avr;
static uint16_t *input;
static size_t input_rows;
static int input_cols = 8;
static int mode_time;
static double input_hz = 1000.0;
static avr_irq_t *adc_irq;
static uint64_t conv_count[N_ADC];
static uint64_t conv0_first, conv0_last;

static int master_fd = -1;
static uint8_t out_buf[OUT_CAP];
static size_t out_len;
static uint64_t bytes_out, bytes_dropped, bytes_in;
static int uart_xoff;
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static void adc_trigger(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  union {
    avr_adc_mux_t mux;
    uint32_t v;
  } e = {.v = value};
  if (e.mux.kind != ADC_MUX_SINGLE || e.mux.src >= N_ADC) return;
  int ch = e.mux.src;
  uint64_t k = conv_count[ch]++;
  if (ch == 0) {
    if (k == 0) conv0_first = avr->cycle;
    conv0_last = avr->cycle;
  }
  uint32_t mv = 2500;
  if (input && ch < input_cols) {
    uint64_t row = k;
    if (mode_time) row = (uint64_t)((double)avr->cycle * input_hz / (double)F_CPU);
    mv = input[(row % input_rows) * input_cols + ch];
  }
  avr_raise_irq(adc_irq + ch, mv);
}

static void uart_out(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  if (out_len < OUT_CAP) out_buf[out_len++] = (uint8_t)value;
  else bytes_dropped++; /* cannot happen: flushed every few hundred cycles */
}

static void uart_xon(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)value; (void)param;
  uart_xoff = 0;
}

static void uart_xoff_cb(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)value; (void)param;
  uart_xoff = 1;
}

/* 1 when a program has the pty open */
static int client_present(void) {
  struct pollfd p = {.fd = master_fd, .events = POLLIN};
  if (poll(&p, 1, 0) < 0) return 0;
  return !(p.revents & POLLHUP);
}

static void flush_output(void) {
  size_t off = 0;
  while (off < out_len) {
    if (stop_flag) break;
    struct pollfd p = {.fd = master_fd, .events = POLLOUT};
    poll(&p, 1, 100);
    if (p.revents & POLLHUP) {
      bytes_dropped += out_len - off; /* nobody listening: the bytes go nowhere */
      break;
    }
    if (!(p.revents & POLLOUT)) continue; /* reader is slow: simulated time waits */
    ssize_t w = write(master_fd, out_buf + off, out_len - off);
    if (w > 0) {
      off += (size_t)w;
      bytes_out += (uint64_t)w;
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      bytes_dropped += out_len - off;
      break;
    }
  }
  out_len = 0;
}

static uint8_t in_buf[256];
static size_t in_len, in_pos;

static void service_input(avr_irq_t *uart_in) {
  if (in_pos == in_len) {
    in_pos = in_len = 0;
    struct pollfd p = {.fd = master_fd, .events = POLLIN};
    if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
      ssize_t r = read(master_fd, in_buf, sizeof in_buf);
      if (r > 0) in_len = (size_t)r;
    }
  }
  if (in_pos < in_len && !uart_xoff) {
    avr_raise_irq(uart_in, in_buf[in_pos++]);
    bytes_in++;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint16_t *load_input(const char *path, size_t *rows, int cols) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "emgsim: cannot open input %s: %s\n", path, strerror(errno));
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t row_bytes = (size_t)cols * 2;
  if (size <= 0 || (size_t)size % row_bytes) {
    fprintf(stderr, "emgsim: %s: size %ld is not a whole number of %d-channel rows\n", path,
            size, cols);
    exit(2);
  }
  uint16_t *d = malloc((size_t)size);
  if (!d || fread(d, 1, (size_t)size, f) != (size_t)size) {
    fprintf(stderr, "emgsim: cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  *rows = (size_t)size / row_bytes; /* little-endian host assumed (x86, ARM) */
  return d;
}

int main(int argc, char **argv) {
  const char *in_path = NULL, *link_path = NULL, *stats_path = NULL;
  double seconds = 0, speed = 1.0;
  int realtime = 0, opt;
  while ((opt = getopt(argc, argv, "i:c:m:r:t:Rx:l:S:h")) != -1) {
    switch (opt) {
      case 'i': in_path = optarg; break;
      case 'c': input_cols = atoi(optarg); break;
      case 'm': mode_time = strcmp(optarg, "time") == 0; break;
      case 'r': input_hz = atof(optarg); break;
      case 't': seconds = atof(optarg); break;
      case 'R': realtime = 1; break;
      case 'x': speed = atof(optarg); break;
      case 'l': link_path = optarg; break;
      case 'S': stats_path = optarg; break;
      default:
        fprintf(stderr, "usage: %s [-i input.u16] [-c cols] [-m sample|time] [-r hz] [-t s] "
                        "[-R] [-x speed] [-l link] [-S stats] firmware.elf\n", argv[0]);
        return 2;
    }
  }
  if (optind >= argc || input_cols < 1 || input_hz <= 0 || speed <= 0) {
    fprintf(stderr, "emgsim: need a firmware ELF (see -h)\n");
    return 2;
  }
  if (in_path) input = load_input(in_path, &input_rows, input_cols);

  elf_firmware_t fw;
  memset(&fw, 0, sizeof fw);
  if (elf_read_firmware(argv[optind], &fw) != 0) {
    fprintf(stderr, "emgsim: cannot load %s\n", argv[optind]);
    return 2;
  }
  avr = avr_make_mcu_by_name("atmega328p");
  if (!avr) return 2;
  avr_init(avr);
  avr_load_firmware(avr, &fw);
  avr->frequency = F_CPU;
  avr->vcc = avr->avcc = avr->aref = 5000;
  avr->log = LOG_WARNING;

  adc_irq = avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, 0);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER),
                          adc_trigger, NULL);
  for (int c = 0; c < N_ADC; c++) avr_raise_irq(adc_irq + c, 2500);

  uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  flags &= ~(AVR_UART_FLAG_POLL_SLEEP | AVR_UART_FLAG_STDIO);
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  avr_irq_t *uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                          uart_out, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                          uart_xon, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                          uart_xoff_cb, NULL);

  int slave_fd;
  char name[256];
  struct termios tio;
  if (openpty(&master_fd, &slave_fd, name, NULL, NULL) != 0) {
    perror("emgsim: openpty");
    return 2;
  }
  tcgetattr(slave_fd, &tio);
  cfmakeraw(&tio);
  tcsetattr(slave_fd, TCSANOW, &tio);
  close(slave_fd); /* the client opens it by name; POLLHUP tells when nobody has it open */
  fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
  if (link_path) {
    unlink(link_path);
    if (symlink(name, link_path) != 0) perror("emgsim: symlink");
  }
  printf("PTY %s\n", name);
  fflush(stdout);

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  avr_cycle_count_t limit = seconds > 0 ? (avr_cycle_count_t)(seconds * F_CPU) : 0;
  double t0 = now_s();
  int state = cpu_Running;
  int present = 0;
  while (!stop_flag && state != cpu_Done && state != cpu_Crashed) {
    avr_cycle_count_t until = avr->cycle + 1600; /* service I/O every 100 us simulated */
    while (avr->cycle < until && state != cpu_Done && state != cpu_Crashed)
      state = avr_run(avr);
    if ((avr->cycle / 1600) % 16 == 0) present = client_present();
    if (out_len) {
      if (present) flush_output();
      else {
        bytes_dropped += out_len;
        out_len = 0;
      }
    }
    if (present) service_input(uart_in);
    if (limit && avr->cycle >= limit) break;
    if (realtime) {
      double ahead = (double)avr->cycle / F_CPU / speed - (now_s() - t0);
      if (ahead > 0.002) {
        struct timespec ts = {0, (long)(ahead * 1e9)};
        nanosleep(&ts, NULL);
      }
    }
  }
  if (out_len && client_present()) flush_output();
  double wall = now_s() - t0;
  FILE *s = stats_path ? fopen(stats_path, "w") : NULL;
  FILE *outs[2] = {stderr, s};
  for (int i = 0; i < 2; i++) {
    if (!outs[i]) continue;
    fprintf(outs[i],
            "cycles=%llu\nsim_seconds=%.6f\nwall_seconds=%.3f\nuart_bytes_out=%llu\n"
            "uart_bytes_dropped=%llu\nuart_bytes_in=%llu\nconv0=%llu\nconv0_first_cycle=%llu\n"
            "conv0_last_cycle=%llu\nstate=%d\n",
            (unsigned long long)avr->cycle, (double)avr->cycle / F_CPU, wall,
            (unsigned long long)bytes_out, (unsigned long long)bytes_dropped,
            (unsigned long long)bytes_in, (unsigned long long)conv_count[0],
            (unsigned long long)conv0_first, (unsigned long long)conv0_last, state);
  }
  if (s) fclose(s);
  if (link_path) unlink(link_path);
  close(master_fd);
  return state == cpu_Crashed ? 1 : 0;
}
