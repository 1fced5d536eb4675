/*
 * emg_acquire: multi-channel surface-EMG acquisition for emgfeedback.
 *
 * Board: Arduino Nano (ATmega328P, 8 channels A0-A7) or Uno (6 channels A0-A5), 16 MHz.
 * Sampling: Timer1 in CTC mode interrupts at exactly `rate` Hz (F_CPU / rate cycles, so only
 * rates dividing 16 MHz are accepted: 250, 320, 400, 500, 625, 640, 800, 1000, 1250, 1280,
 * 1600, 2000 Hz).  Each tick starts the conversion of channel 0; the ADC interrupt reads the
 * result *before* switching ADMUX to the next channel and starts it, until all channels of the
 * sample set are converted.  (Conversions are started in software rather than by ADC
 * auto-trigger: same timing on the chip, and simavr emulates it.)
 * ADC clock 16 MHz / 64 = 250 kHz: 52 us per conversion, 8 channels in 416 us.
 *
 * A sample set goes into a ring buffer; the main loop frames it (docs/protocol.md) and writes
 * it at 500000 baud (exact at 16 MHz with U2X).  The 32-bit sample counter counts timer ticks,
 * so a set dropped because the ring was full (or the previous set was still converting) is
 * visible to the host as a counter gap, and counted in `overflows` (reported by IDENTIFY).
 *
 * Streaming starts on the START command only (opening a serial port flushes its input, so
 * anything sent before the host is ready would be lost).
 *
 * Build: `make -C firmware` (Debian arduino-mk) or open this folder in the Arduino IDE.
 */
#include <Arduino.h>
#include <util/crc16.h>
#include "emg_protocol.h"

#define FW_MAJOR 1
#define FW_MINOR 0
#define FW_PATCH 0

#if defined(ARDUINO_AVR_NANO) || defined(EMG_BOARD_NANO)
#define BOARD_NAME "nano"
#define MAX_CH 8
#elif defined(ARDUINO_AVR_UNO)
#define BOARD_NAME "uno"
#define MAX_CH 6
#else
#define BOARD_NAME "atmega"
#define MAX_CH 6
#endif

/* Analog front end (hardware/README.md): total gain from electrodes to ADC pin, ADC reference. */
#ifndef FE_GAIN
#define FE_GAIN 2000
#endif
#define VREF_MV 5000
#define ADC_BITS 10

#define RING_SIZE 32 /* sample sets, power of two */
#define RING_MASK (RING_SIZE - 1)
#define ADC_IDLE 0xFF

static volatile uint16_t ring[RING_SIZE][MAX_CH];
static volatile uint32_t ring_counter[RING_SIZE];
static volatile uint8_t ring_head = 0; /* written by the ADC ISR */
static volatile uint8_t ring_tail = 0; /* written by loop() */
static volatile uint8_t adc_ch = ADC_IDLE;
static volatile uint8_t adc_slot = 0;
static volatile uint32_t tick_counter = 0;
static volatile uint32_t overflows = 0;

static uint8_t n_channels = MAX_CH;
static uint16_t rate = EMG_RATE_DEFAULT;
static bool streaming = false;

/* ---- sampling ---------------------------------------------------------------------------- */
ISR(TIMER1_COMPA_vect) {
  uint32_t counter = tick_counter++;
  if (adc_ch != ADC_IDLE || ((ring_head + 1) & RING_MASK) == ring_tail) {
    overflows++; /* previous set still converting, or ring full: this sample set is lost */
    return;
  }
  adc_slot = ring_head;
  ring_counter[adc_slot] = counter;
  adc_ch = 0;
  ADMUX = _BV(REFS0); /* AVcc reference, channel 0 */
  ADCSRA |= _BV(ADSC);
}

ISR(ADC_vect) {
  uint16_t v = ADC; /* read before touching ADMUX */
  uint8_t ch = adc_ch;
  ring[adc_slot][ch] = v;
  ch++;
  if (ch < n_channels) {
    ADMUX = _BV(REFS0) | ch;
    ADCSRA |= _BV(ADSC);
    adc_ch = ch;
  } else {
    adc_ch = ADC_IDLE;
    ring_head = (adc_slot + 1) & RING_MASK;
  }
}

static void sampling_start() {
  TIMSK1 = 0;
  TCCR1A = 0;
  TCCR1B = 0;
  noInterrupts();
  tick_counter = 0;
  overflows = 0;
  ring_head = ring_tail = 0;
  adc_ch = ADC_IDLE;
  interrupts();
  OCR1A = (uint16_t)(F_CPU / rate - 1);
  TCNT1 = 0;
  TIFR1 = _BV(OCF1A);
  TIMSK1 = _BV(OCIE1A);
  TCCR1B = _BV(WGM12) | _BV(CS10); /* CTC, no prescaler */
}

static void sampling_stop() {
  TCCR1B = 0;
  TIMSK1 = 0;
  while (adc_ch != ADC_IDLE) {
  }
  ring_tail = ring_head;
}

/* ---- framing ----------------------------------------------------------------------------- */
static uint16_t tx_crc;

static inline void tx_begin(uint8_t kind, uint8_t len) {
  uint8_t type = (EMG_VERSION << 4) | kind;
  Serial.write((uint8_t)EMG_SYNC0);
  Serial.write((uint8_t)EMG_SYNC1);
  Serial.write(type);
  Serial.write(len);
  tx_crc = _crc_xmodem_update(EMG_CRC_INIT, type); /* xmodem poly, 0xFFFF init = CCITT-FALSE */
  tx_crc = _crc_xmodem_update(tx_crc, len);
}

static inline void tx_u8(uint8_t b) {
  Serial.write(b);
  tx_crc = _crc_xmodem_update(tx_crc, b);
}

static inline void tx_u16(uint16_t v) {
  tx_u8(v & 0xFF);
  tx_u8(v >> 8);
}

static inline void tx_u32(uint32_t v) {
  tx_u16(v & 0xFFFF);
  tx_u16(v >> 16);
}

static inline void tx_end() {
  uint16_t crc = tx_crc;
  Serial.write((uint8_t)(crc & 0xFF));
  Serial.write((uint8_t)(crc >> 8));
}

static void send_info() {
  tx_begin(EMG_KIND_INFO, EMG_INFO_SIZE);
  tx_u8(EMG_VERSION);
  tx_u8(FW_MAJOR);
  tx_u8(FW_MINOR);
  tx_u8(FW_PATCH);
  tx_u8(n_channels);
  tx_u8(MAX_CH);
  tx_u16(rate);
  tx_u8(ADC_BITS);
  tx_u8(streaming ? EMG_INFO_FLAG_STREAMING : 0);
  tx_u16(VREF_MV);
  tx_u16(FE_GAIN);
  noInterrupts();
  uint32_t ovf = overflows;
  interrupts();
  tx_u32(ovf);
  const char *name = BOARD_NAME;
  for (uint8_t i = 0; i < EMG_BOARD_NAME_SIZE; i++) {
    uint8_t c = *name ? (uint8_t)*name++ : 0;
    tx_u8(c);
  }
  tx_end();
}

static void send_ack(uint8_t cmd, uint8_t result, uint32_t value) {
  tx_begin(EMG_KIND_ACK, EMG_ACK_SIZE);
  tx_u8(cmd);
  tx_u8(result);
  tx_u32(value);
  tx_end();
}

static void send_sample_set(uint8_t slot) {
  tx_begin(EMG_KIND_DATA, EMG_DATA_HEADER + 2 * n_channels);
  tx_u32(ring_counter[slot]);
  for (uint8_t c = 0; c < n_channels; c++) tx_u16(ring[slot][c]);
  tx_end();
}

/* bytes per second on the line for a configuration */
static uint32_t line_load(uint16_t r, uint8_t nch) {
  return (uint32_t)r * (EMG_HEADER_SIZE + EMG_DATA_HEADER + 2 * nch + EMG_CRC_SIZE);
}

static bool config_ok(uint16_t r, uint8_t nch) {
  return r >= EMG_RATE_MIN && r <= EMG_RATE_MAX && (F_CPU % r) == 0 && nch >= 1 &&
         nch <= MAX_CH && line_load(r, nch) <= EMG_LINE_LOAD_MAX;
}

/* ---- commands ---------------------------------------------------------------------------- */
enum { RX_SYNC0, RX_SYNC1, RX_TYPE, RX_LEN, RX_PAYLOAD, RX_CRC0, RX_CRC1 };
static uint8_t rx_state = RX_SYNC0;
static uint8_t rx_type, rx_len, rx_pos, rx_crc_lo;
static uint8_t rx_payload[8];
static uint16_t rx_crc;

static void handle_command(uint8_t type, const uint8_t *p, uint8_t len) {
  uint8_t kind = type & 0x0F;
  if ((type >> 4) != EMG_VERSION) {
    send_ack(kind, EMG_ACK_UNKNOWN, 0);
    return;
  }
  switch (kind) {
    case EMG_CMD_IDENTIFY:
      send_info();
      break;
    case EMG_CMD_START:
      if (!streaming) {
        send_ack(kind, EMG_ACK_OK, 0);
        Serial.flush();
        streaming = true;
        sampling_start();
      } else {
        send_ack(kind, EMG_ACK_OK, tick_counter);
      }
      break;
    case EMG_CMD_STOP:
      if (streaming) {
        sampling_stop();
        streaming = false;
      }
      send_ack(kind, EMG_ACK_OK, tick_counter);
      break;
    case EMG_CMD_SET_RATE: {
      uint16_t r = len >= 2 ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
      if (streaming) send_ack(kind, EMG_ACK_BUSY, rate);
      else if (len != 2 || !config_ok(r, n_channels)) send_ack(kind, EMG_ACK_BAD_ARG, rate);
      else {
        rate = r;
        send_ack(kind, EMG_ACK_OK, rate);
      }
      break;
    }
    case EMG_CMD_SET_CHANNELS: {
      uint8_t n = len >= 1 ? p[0] : 0;
      if (streaming) send_ack(kind, EMG_ACK_BUSY, n_channels);
      else if (len != 1 || !config_ok(rate, n)) send_ack(kind, EMG_ACK_BAD_ARG, n_channels);
      else {
        n_channels = n;
        send_ack(kind, EMG_ACK_OK, n_channels);
      }
      break;
    }
    case EMG_CMD_PING: {
      uint32_t token = 0;
      if (len == 4)
        token = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                ((uint32_t)p[3] << 24);
      send_ack(kind, len == 4 ? EMG_ACK_OK : EMG_ACK_BAD_ARG, token);
      break;
    }
    default:
      send_ack(kind, EMG_ACK_UNKNOWN, 0);
  }
}

static void rx_byte(uint8_t b) {
  switch (rx_state) {
    case RX_SYNC0:
      if (b == EMG_SYNC0) rx_state = RX_SYNC1;
      break;
    case RX_SYNC1:
      rx_state = (b == EMG_SYNC1) ? RX_TYPE : (b == EMG_SYNC0 ? RX_SYNC1 : RX_SYNC0);
      break;
    case RX_TYPE:
      rx_type = b;
      rx_crc = _crc_xmodem_update(EMG_CRC_INIT, b);
      rx_state = RX_LEN;
      break;
    case RX_LEN:
      rx_len = b;
      rx_pos = 0;
      rx_crc = _crc_xmodem_update(rx_crc, b);
      if (b > sizeof(rx_payload)) rx_state = RX_SYNC0; /* no command is that long */
      else rx_state = b ? RX_PAYLOAD : RX_CRC0;
      break;
    case RX_PAYLOAD:
      rx_payload[rx_pos++] = b;
      rx_crc = _crc_xmodem_update(rx_crc, b);
      if (rx_pos == rx_len) rx_state = RX_CRC0;
      break;
    case RX_CRC0:
      rx_crc_lo = b;
      rx_state = RX_CRC1;
      break;
    case RX_CRC1:
      rx_state = RX_SYNC0;
      if ((uint16_t)(rx_crc_lo | (b << 8)) == rx_crc) handle_command(rx_type, rx_payload, rx_len);
      break;
  }
}

/* ---- Arduino entry points ---------------------------------------------------------------- */
void setup() {
  Serial.begin(EMG_LINE_BAUD); /* the core picks U2X with UBRR 3: exactly 500000 baud */
  DIDR0 = 0x3F;                /* digital input buffers off on A0-A5 (A6/A7 are analog only) */
  ADMUX = _BV(REFS0);
  ADCSRA = _BV(ADEN) | _BV(ADIE) | _BV(ADPS2) | _BV(ADPS1); /* prescaler 64: 250 kHz */
  ADCSRB = 0;
}

void loop() {
  while (Serial.available() > 0) rx_byte((uint8_t)Serial.read());
  if (streaming) {
    uint8_t n = 4; /* bounded, so commands are served between bursts */
    while (n-- && ring_tail != ring_head) {
      uint8_t slot = ring_tail;
      send_sample_set(slot);
      ring_tail = (slot + 1) & RING_MASK;
    }
  }
}
