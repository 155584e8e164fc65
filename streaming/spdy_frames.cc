#include "streaming/spdy_frames.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace podshim::streaming::spdy {

namespace {

// Section 2.6.10.1 of the specification, byte for byte (the 1423 bytes of
// SPDY_dictionary_txt): length-prefixed header names, then common values.
// clang-format off
constexpr std::array<unsigned char, 1423> kDictionary = {
    0x00, 0x00, 0x00, 0x07, 0x6f, 0x70, 0x74, 0x69,  // ....opti
    0x6f, 0x6e, 0x73, 0x00, 0x00, 0x00, 0x04, 0x68,  // ons....h
    0x65, 0x61, 0x64, 0x00, 0x00, 0x00, 0x04, 0x70,  // ead....p
    0x6f, 0x73, 0x74, 0x00, 0x00, 0x00, 0x03, 0x70,  // ost....p
    0x75, 0x74, 0x00, 0x00, 0x00, 0x06, 0x64, 0x65,  // ut....de
    0x6c, 0x65, 0x74, 0x65, 0x00, 0x00, 0x00, 0x05,  // lete....
    0x74, 0x72, 0x61, 0x63, 0x65, 0x00, 0x00, 0x00,  // trace...
    0x06, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x00,  // .accept.
    0x00, 0x00, 0x0e, 0x61, 0x63, 0x63, 0x65, 0x70,  // ...accep
    0x74, 0x2d, 0x63, 0x68, 0x61, 0x72, 0x73, 0x65,  // t-charse
    0x74, 0x00, 0x00, 0x00, 0x0f, 0x61, 0x63, 0x63,  // t....acc
    0x65, 0x70, 0x74, 0x2d, 0x65, 0x6e, 0x63, 0x6f,  // ept-enco
    0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x0f,  // ding....
    0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x6c,  // accept-l
    0x61, 0x6e, 0x67, 0x75, 0x61, 0x67, 0x65, 0x00,  // anguage.
    0x00, 0x00, 0x0d, 0x61, 0x63, 0x63, 0x65, 0x70,  // ...accep
    0x74, 0x2d, 0x72, 0x61, 0x6e, 0x67, 0x65, 0x73,  // t-ranges
    0x00, 0x00, 0x00, 0x03, 0x61, 0x67, 0x65, 0x00,  // ....age.
    0x00, 0x00, 0x05, 0x61, 0x6c, 0x6c, 0x6f, 0x77,  // ...allow
    0x00, 0x00, 0x00, 0x0d, 0x61, 0x75, 0x74, 0x68,  // ....auth
    0x6f, 0x72, 0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f,  // orizatio
    0x6e, 0x00, 0x00, 0x00, 0x0d, 0x63, 0x61, 0x63,  // n....cac
    0x68, 0x65, 0x2d, 0x63, 0x6f, 0x6e, 0x74, 0x72,  // he-contr
    0x6f, 0x6c, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x6f,  // ol....co
    0x6e, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e,  // nnection
    0x00, 0x00, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74,  // ....cont
    0x65, 0x6e, 0x74, 0x2d, 0x62, 0x61, 0x73, 0x65,  // ent-base
    0x00, 0x00, 0x00, 0x10, 0x63, 0x6f, 0x6e, 0x74,  // ....cont
    0x65, 0x6e, 0x74, 0x2d, 0x65, 0x6e, 0x63, 0x6f,  // ent-enco
    0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x10,  // ding....
    0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d,  // content-
    0x6c, 0x61, 0x6e, 0x67, 0x75, 0x61, 0x67, 0x65,  // language
    0x00, 0x00, 0x00, 0x0e, 0x63, 0x6f, 0x6e, 0x74,  // ....cont
    0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x65, 0x6e, 0x67,  // ent-leng
    0x74, 0x68, 0x00, 0x00, 0x00, 0x10, 0x63, 0x6f,  // th....co
    0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x6f,  // ntent-lo
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00,  // cation..
    0x00, 0x0b, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e,  // ..conten
    0x74, 0x2d, 0x6d, 0x64, 0x35, 0x00, 0x00, 0x00,  // t-md5...
    0x0d, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74,  // .content
    0x2d, 0x72, 0x61, 0x6e, 0x67, 0x65, 0x00, 0x00,  // -range..
    0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e,  // ..conten
    0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x00, 0x00,  // t-type..
    0x00, 0x04, 0x64, 0x61, 0x74, 0x65, 0x00, 0x00,  // ..date..
    0x00, 0x04, 0x65, 0x74, 0x61, 0x67, 0x00, 0x00,  // ..etag..
    0x00, 0x06, 0x65, 0x78, 0x70, 0x65, 0x63, 0x74,  // ..expect
    0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x70, 0x69,  // ....expi
    0x72, 0x65, 0x73, 0x00, 0x00, 0x00, 0x04, 0x66,  // res....f
    0x72, 0x6f, 0x6d, 0x00, 0x00, 0x00, 0x04, 0x68,  // rom....h
    0x6f, 0x73, 0x74, 0x00, 0x00, 0x00, 0x08, 0x69,  // ost....i
    0x66, 0x2d, 0x6d, 0x61, 0x74, 0x63, 0x68, 0x00,  // f-match.
    0x00, 0x00, 0x11, 0x69, 0x66, 0x2d, 0x6d, 0x6f,  // ...if-mo
    0x64, 0x69, 0x66, 0x69, 0x65, 0x64, 0x2d, 0x73,  // dified-s
    0x69, 0x6e, 0x63, 0x65, 0x00, 0x00, 0x00, 0x0d,  // ince....
    0x69, 0x66, 0x2d, 0x6e, 0x6f, 0x6e, 0x65, 0x2d,  // if-none-
    0x6d, 0x61, 0x74, 0x63, 0x68, 0x00, 0x00, 0x00,  // match...
    0x08, 0x69, 0x66, 0x2d, 0x72, 0x61, 0x6e, 0x67,  // .if-rang
    0x65, 0x00, 0x00, 0x00, 0x13, 0x69, 0x66, 0x2d,  // e....if-
    0x75, 0x6e, 0x6d, 0x6f, 0x64, 0x69, 0x66, 0x69,  // unmodifi
    0x65, 0x64, 0x2d, 0x73, 0x69, 0x6e, 0x63, 0x65,  // ed-since
    0x00, 0x00, 0x00, 0x0d, 0x6c, 0x61, 0x73, 0x74,  // ....last
    0x2d, 0x6d, 0x6f, 0x64, 0x69, 0x66, 0x69, 0x65,  // -modifie
    0x64, 0x00, 0x00, 0x00, 0x08, 0x6c, 0x6f, 0x63,  // d....loc
    0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00,  // ation...
    0x0c, 0x6d, 0x61, 0x78, 0x2d, 0x66, 0x6f, 0x72,  // .max-for
    0x77, 0x61, 0x72, 0x64, 0x73, 0x00, 0x00, 0x00,  // wards...
    0x06, 0x70, 0x72, 0x61, 0x67, 0x6d, 0x61, 0x00,  // .pragma.
    0x00, 0x00, 0x12, 0x70, 0x72, 0x6f, 0x78, 0x79,  // ...proxy
    0x2d, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74,  // -authent
    0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00,  // icate...
    0x13, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x2d, 0x61,  // .proxy-a
    0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x7a, 0x61,  // uthoriza
    0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x05,  // tion....
    0x72, 0x61, 0x6e, 0x67, 0x65, 0x00, 0x00, 0x00,  // range...
    0x07, 0x72, 0x65, 0x66, 0x65, 0x72, 0x65, 0x72,  // .referer
    0x00, 0x00, 0x00, 0x0b, 0x72, 0x65, 0x74, 0x72,  // ....retr
    0x79, 0x2d, 0x61, 0x66, 0x74, 0x65, 0x72, 0x00,  // y-after.
    0x00, 0x00, 0x06, 0x73, 0x65, 0x72, 0x76, 0x65,  // ...serve
    0x72, 0x00, 0x00, 0x00, 0x02, 0x74, 0x65, 0x00,  // r....te.
    0x00, 0x00, 0x07, 0x74, 0x72, 0x61, 0x69, 0x6c,  // ...trail
    0x65, 0x72, 0x00, 0x00, 0x00, 0x11, 0x74, 0x72,  // er....tr
    0x61, 0x6e, 0x73, 0x66, 0x65, 0x72, 0x2d, 0x65,  // ansfer-e
    0x6e, 0x63, 0x6f, 0x64, 0x69, 0x6e, 0x67, 0x00,  // ncoding.
    0x00, 0x00, 0x07, 0x75, 0x70, 0x67, 0x72, 0x61,  // ...upgra
    0x64, 0x65, 0x00, 0x00, 0x00, 0x0a, 0x75, 0x73,  // de....us
    0x65, 0x72, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74,  // er-agent
    0x00, 0x00, 0x00, 0x04, 0x76, 0x61, 0x72, 0x79,  // ....vary
    0x00, 0x00, 0x00, 0x03, 0x76, 0x69, 0x61, 0x00,  // ....via.
    0x00, 0x00, 0x07, 0x77, 0x61, 0x72, 0x6e, 0x69,  // ...warni
    0x6e, 0x67, 0x00, 0x00, 0x00, 0x10, 0x77, 0x77,  // ng....ww
    0x77, 0x2d, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e,  // w-authen
    0x74, 0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00,  // ticate..
    0x00, 0x06, 0x6d, 0x65, 0x74, 0x68, 0x6f, 0x64,  // ..method
    0x00, 0x00, 0x00, 0x03, 0x67, 0x65, 0x74, 0x00,  // ....get.
    0x00, 0x00, 0x06, 0x73, 0x74, 0x61, 0x74, 0x75,  // ...statu
    0x73, 0x00, 0x00, 0x00, 0x06, 0x32, 0x30, 0x30,  // s....200
    0x20, 0x4f, 0x4b, 0x00, 0x00, 0x00, 0x07, 0x76,  // .OK....v
    0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x00, 0x00,  // ersion..
    0x00, 0x08, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31,  // ..HTTP/1
    0x2e, 0x31, 0x00, 0x00, 0x00, 0x03, 0x75, 0x72,  // .1....ur
    0x6c, 0x00, 0x00, 0x00, 0x06, 0x70, 0x75, 0x62,  // l....pub
    0x6c, 0x69, 0x63, 0x00, 0x00, 0x00, 0x0a, 0x73,  // lic....s
    0x65, 0x74, 0x2d, 0x63, 0x6f, 0x6f, 0x6b, 0x69,  // et-cooki
    0x65, 0x00, 0x00, 0x00, 0x0a, 0x6b, 0x65, 0x65,  // e....kee
    0x70, 0x2d, 0x61, 0x6c, 0x69, 0x76, 0x65, 0x00,  // p-alive.
    0x00, 0x00, 0x06, 0x6f, 0x72, 0x69, 0x67, 0x69,  // ...origi
    0x6e, 0x31, 0x30, 0x30, 0x31, 0x30, 0x31, 0x32,  // n1001012
    0x30, 0x31, 0x32, 0x30, 0x32, 0x32, 0x30, 0x35,  // 01202205
    0x32, 0x30, 0x36, 0x33, 0x30, 0x30, 0x33, 0x30,  // 20630030
    0x32, 0x33, 0x30, 0x33, 0x33, 0x30, 0x34, 0x33,  // 23033043
    0x30, 0x35, 0x33, 0x30, 0x36, 0x33, 0x30, 0x37,  // 05306307
    0x34, 0x30, 0x32, 0x34, 0x30, 0x35, 0x34, 0x30,  // 40240540
    0x36, 0x34, 0x30, 0x37, 0x34, 0x30, 0x38, 0x34,  // 64074084
    0x30, 0x39, 0x34, 0x31, 0x30, 0x34, 0x31, 0x31,  // 09410411
    0x34, 0x31, 0x32, 0x34, 0x31, 0x33, 0x34, 0x31,  // 41241341
    0x34, 0x34, 0x31, 0x35, 0x34, 0x31, 0x36, 0x34,  // 44154164
    0x31, 0x37, 0x35, 0x30, 0x32, 0x35, 0x30, 0x34,  // 17502504
    0x35, 0x30, 0x35, 0x32, 0x30, 0x33, 0x20, 0x4e,  // 505203.N
    0x6f, 0x6e, 0x2d, 0x41, 0x75, 0x74, 0x68, 0x6f,  // on-Autho
    0x72, 0x69, 0x74, 0x61, 0x74, 0x69, 0x76, 0x65,  // ritative
    0x20, 0x49, 0x6e, 0x66, 0x6f, 0x72, 0x6d, 0x61,  // .Informa
    0x74, 0x69, 0x6f, 0x6e, 0x32, 0x30, 0x34, 0x20,  // tion204.
    0x4e, 0x6f, 0x20, 0x43, 0x6f, 0x6e, 0x74, 0x65,  // No.Conte
    0x6e, 0x74, 0x33, 0x30, 0x31, 0x20, 0x4d, 0x6f,  // nt301.Mo
    0x76, 0x65, 0x64, 0x20, 0x50, 0x65, 0x72, 0x6d,  // ved.Perm
    0x61, 0x6e, 0x65, 0x6e, 0x74, 0x6c, 0x79, 0x34,  // anently4
    0x30, 0x30, 0x20, 0x42, 0x61, 0x64, 0x20, 0x52,  // 00.Bad.R
    0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x34, 0x30,  // equest40
    0x31, 0x20, 0x55, 0x6e, 0x61, 0x75, 0x74, 0x68,  // 1.Unauth
    0x6f, 0x72, 0x69, 0x7a, 0x65, 0x64, 0x34, 0x30,  // orized40
    0x33, 0x20, 0x46, 0x6f, 0x72, 0x62, 0x69, 0x64,  // 3.Forbid
    0x64, 0x65, 0x6e, 0x34, 0x30, 0x34, 0x20, 0x4e,  // den404.N
    0x6f, 0x74, 0x20, 0x46, 0x6f, 0x75, 0x6e, 0x64,  // ot.Found
    0x35, 0x30, 0x30, 0x20, 0x49, 0x6e, 0x74, 0x65,  // 500.Inte
    0x72, 0x6e, 0x61, 0x6c, 0x20, 0x53, 0x65, 0x72,  // rnal.Ser
    0x76, 0x65, 0x72, 0x20, 0x45, 0x72, 0x72, 0x6f,  // ver.Erro
    0x72, 0x35, 0x30, 0x31, 0x20, 0x4e, 0x6f, 0x74,  // r501.Not
    0x20, 0x49, 0x6d, 0x70, 0x6c, 0x65, 0x6d, 0x65,  // .Impleme
    0x6e, 0x74, 0x65, 0x64, 0x35, 0x30, 0x33, 0x20,  // nted503.
    0x53, 0x65, 0x72, 0x76, 0x69, 0x63, 0x65, 0x20,  // Service.
    0x55, 0x6e, 0x61, 0x76, 0x61, 0x69, 0x6c, 0x61,  // Unavaila
    0x62, 0x6c, 0x65, 0x4a, 0x61, 0x6e, 0x20, 0x46,  // bleJan.F
    0x65, 0x62, 0x20, 0x4d, 0x61, 0x72, 0x20, 0x41,  // eb.Mar.A
    0x70, 0x72, 0x20, 0x4d, 0x61, 0x79, 0x20, 0x4a,  // pr.May.J
    0x75, 0x6e, 0x20, 0x4a, 0x75, 0x6c, 0x20, 0x41,  // un.Jul.A
    0x75, 0x67, 0x20, 0x53, 0x65, 0x70, 0x74, 0x20,  // ug.Sept.
    0x4f, 0x63, 0x74, 0x20, 0x4e, 0x6f, 0x76, 0x20,  // Oct.Nov.
    0x44, 0x65, 0x63, 0x20, 0x30, 0x30, 0x3a, 0x30,  // Dec.00:0
    0x30, 0x3a, 0x30, 0x30, 0x20, 0x4d, 0x6f, 0x6e,  // 0:00.Mon
    0x2c, 0x20, 0x54, 0x75, 0x65, 0x2c, 0x20, 0x57,  // ,.Tue,.W
    0x65, 0x64, 0x2c, 0x20, 0x54, 0x68, 0x75, 0x2c,  // ed,.Thu,
    0x20, 0x46, 0x72, 0x69, 0x2c, 0x20, 0x53, 0x61,  // .Fri,.Sa
    0x74, 0x2c, 0x20, 0x53, 0x75, 0x6e, 0x2c, 0x20,  // t,.Sun,.
    0x47, 0x4d, 0x54, 0x63, 0x68, 0x75, 0x6e, 0x6b,  // GMTchunk
    0x65, 0x64, 0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f,  // ed,text/
    0x68, 0x74, 0x6d, 0x6c, 0x2c, 0x69, 0x6d, 0x61,  // html,ima
    0x67, 0x65, 0x2f, 0x70, 0x6e, 0x67, 0x2c, 0x69,  // ge/png,i
    0x6d, 0x61, 0x67, 0x65, 0x2f, 0x6a, 0x70, 0x67,  // mage/jpg
    0x2c, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x2f, 0x67,  // ,image/g
    0x69, 0x66, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69,  // if,appli
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78,  // cation/x
    0x6d, 0x6c, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69,  // ml,appli
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78,  // cation/x
    0x68, 0x74, 0x6d, 0x6c, 0x2b, 0x78, 0x6d, 0x6c,  // html+xml
    0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c,  // ,text/pl
    0x61, 0x69, 0x6e, 0x2c, 0x74, 0x65, 0x78, 0x74,  // ain,text
    0x2f, 0x6a, 0x61, 0x76, 0x61, 0x73, 0x63, 0x72,  // /javascr
    0x69, 0x70, 0x74, 0x2c, 0x70, 0x75, 0x62, 0x6c,  // ipt,publ
    0x69, 0x63, 0x70, 0x72, 0x69, 0x76, 0x61, 0x74,  // icprivat
    0x65, 0x6d, 0x61, 0x78, 0x2d, 0x61, 0x67, 0x65,  // emax-age
    0x3d, 0x67, 0x7a, 0x69, 0x70, 0x2c, 0x64, 0x65,  // =gzip,de
    0x66, 0x6c, 0x61, 0x74, 0x65, 0x2c, 0x73, 0x64,  // flate,sd
    0x63, 0x68, 0x63, 0x68, 0x61, 0x72, 0x73, 0x65,  // chcharse
    0x74, 0x3d, 0x75, 0x74, 0x66, 0x2d, 0x38, 0x63,  // t=utf-8c
    0x68, 0x61, 0x72, 0x73, 0x65, 0x74, 0x3d, 0x69,  // harset=i
    0x73, 0x6f, 0x2d, 0x38, 0x38, 0x35, 0x39, 0x2d,  // so-8859-
    0x31, 0x2c, 0x75, 0x74, 0x66, 0x2d, 0x2c, 0x2a,  // 1,utf-,*
    0x2c, 0x65, 0x6e, 0x71, 0x3d, 0x30, 0x2e,        // ,enq=0.
};
// clang-format on

// RFC 1950's Adler-32, for the check below.
constexpr uint32_t Adler32(const std::array<unsigned char, 1423>& bytes) {
  uint32_t a = 1;
  uint32_t b = 0;
  for (unsigned char c : bytes) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}
// The DICTID that peers put in the zlib header of their first header block
// (bytes 2-5 after 0x78 0xf9 or 0x78 0xbb): inflate rejects any other.
static_assert(Adler32(kDictionary) == 0xe3c6a7c2);

constexpr uint32_t kControlBit = 0x80000000;
constexpr uint32_t kStreamIdMask = 0x7fffffff;
constexpr uint32_t kSettingsIdMask = 0x00ffffff;
// Inflated header blocks grow by this much at a time, so that a small block
// never costs a large allocation and a zlib bomb stops at the limit.
constexpr size_t kInflateChunk = size_t{16} << 10;

uint32_t LoadU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void AppendU32(std::string& out, uint32_t v) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                         static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(bytes, sizeof(bytes));
}

void AppendControlHeader(std::string& out, FrameType type, uint8_t flags, uint32_t length) {
  AppendU32(out, kControlBit | (uint32_t{kVersion} << 16) | static_cast<uint16_t>(type));
  AppendU32(out, (uint32_t{flags} << 24) | length);
}

const char* TypeName(uint16_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kData:
      return "DATA";
    case FrameType::kSynStream:
      return "SYN_STREAM";
    case FrameType::kSynReply:
      return "SYN_REPLY";
    case FrameType::kRstStream:
      return "RST_STREAM";
    case FrameType::kSettings:
      return "SETTINGS";
    case FrameType::kPing:
      return "PING";
    case FrameType::kGoAway:
      return "GOAWAY";
    case FrameType::kHeaders:
      return "HEADERS";
    case FrameType::kWindowUpdate:
      return "WINDOW_UPDATE";
  }
  return nullptr;  // not a type this codec knows
}

// The payload length a known control frame type needs: exactly `min` when
// `exact`, else at least `min`.
struct LengthRule {
  uint32_t min;
  bool exact;
};

LengthRule ControlLength(FrameType type) {
  switch (type) {
    case FrameType::kSynStream:
      return {10, false};       // stream id, associated id, priority, slot, block
    case FrameType::kSynReply:  // stream id, block
    case FrameType::kHeaders:   // stream id, block
    case FrameType::kSettings:  // entry count, entries
      return {4, false};
    case FrameType::kPing:
      return {4, true};
    case FrameType::kRstStream:
    case FrameType::kGoAway:
    case FrameType::kWindowUpdate:
      return {8, true};
    case FrameType::kData:
      break;
  }
  return {0, false};
}

std::string Quote(absl::string_view bytes) {
  constexpr size_t kMaxShown = 64;
  std::string q = absl::StrCat("`", absl::CHexEscape(bytes.substr(0, kMaxShown)), "`");
  if (bytes.size() > kMaxShown) q.append("...");
  return q;
}

absl::Status CheckHeaderName(absl::string_view name, size_t index) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("header ", index, " has an empty name"));
  }
  for (char c : name) {
    if (c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("header name ", Quote(name), " contains a NUL byte"));
    }
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("header name ", Quote(name), " is not lowercase"));
    }
  }
  return absl::OkStatus();
}

// `names` sorted in place; the first name that appears twice, if any.
absl::Status CheckNoDuplicates(std::vector<absl::string_view>& names) {
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup == names.end()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "header ", Quote(*dup), " appears twice (SPDY joins several values with a NUL byte)"));
}

// Splits an inflated name/value header block (section 2.6.10).
absl::StatusOr<HeaderBlock> ParseHeaderBlock(absl::string_view block) {
  if (block.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("header block of ", block.size(), " bytes has no pair count"));
  }
  const uint32_t count = LoadU32(block.data());
  block.remove_prefix(4);
  // Each pair takes at least its two 4-byte lengths.
  if (count > block.size() / 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("header block claims ", count, " pairs in ", block.size(), " bytes"));
  }
  HeaderBlock headers;
  headers.reserve(count);
  std::vector<absl::string_view> names;
  names.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    absl::string_view fields[2];
    for (absl::string_view& field : fields) {
      const char* what = &field == &fields[0] ? "name" : "value";
      if (block.size() < 4) {
        return absl::InvalidArgumentError(
            absl::StrCat("header block ends in the ", what, " length of pair ", i));
      }
      const uint32_t length = LoadU32(block.data());
      block.remove_prefix(4);
      if (length > block.size()) {
        return absl::InvalidArgumentError(absl::StrCat("the ", what, " length ", length,
                                                       " of header pair ", i, " overruns the ",
                                                       block.size(), " bytes left in the block"));
      }
      field = block.substr(0, length);
      block.remove_prefix(length);
    }
    if (absl::Status s = CheckHeaderName(fields[0], i); !s.ok()) return s;
    names.push_back(fields[0]);
    headers.emplace_back(std::string(fields[0]), std::string(fields[1]));
  }
  if (!block.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(block.size(), " bytes follow the last of ", count, " header pairs"));
  }
  if (absl::Status s = CheckNoDuplicates(names); !s.ok()) return s;
  return headers;
}

absl::Status CheckStreamId(uint32_t id, bool zero_ok, absl::string_view what) {
  if (id > kMaxStreamId || (id == 0 && !zero_ok)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " stream id ", id, " is not in [", zero_ok ? 0 : 1, ", 2^31-1]"));
  }
  return absl::OkStatus();
}

absl::Status CheckFlags(uint8_t flags, uint8_t allowed, absl::string_view what) {
  if ((flags & ~allowed) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " does not take flags 0x", absl::Hex(flags & ~allowed)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view HeaderDictionary() {
  return {reinterpret_cast<const char*>(kDictionary.data()), kDictionary.size()};
}

// ---------------------------------------------------------------------------
// Decoder

struct Decoder::Inflater {
  z_stream zs{};
  ~Inflater() { inflateEnd(&zs); }
};

Decoder::Decoder(DecoderLimits limits) : limits_(limits) {}
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

void Decoder::Feed(absl::string_view bytes) {
  if (!status_.ok()) return;
  if (skip_ > 0 && buffered() == 0) {
    const size_t n = std::min<size_t>(skip_, bytes.size());
    skip_ -= static_cast<uint32_t>(n);
    bytes.remove_prefix(n);
  }
  if (bytes.empty()) return;
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::Status Decoder::Fail(absl::Status status) {
  status_ = std::move(status);
  buffer_ = std::string();
  pos_ = 0;
  inflater_.reset();
  return status_;
}

absl::StatusOr<std::optional<Frame>> Decoder::Next() {
  if (!status_.ok()) return status_;
  for (;;) {
    if (skip_ > 0) {
      const size_t n = std::min<size_t>(skip_, buffered());
      pos_ += n;
      skip_ -= static_cast<uint32_t>(n);
      if (skip_ > 0) return std::nullopt;
    }
    if (buffered() < kFrameHeaderBytes) return std::nullopt;
    const char* head = buffer_.data() + pos_;
    const uint32_t word = LoadU32(head);
    const auto flags = static_cast<uint8_t>(head[4]);
    const uint32_t length = LoadU32(head + 4) & kMaxFrameLength;

    std::optional<Frame> frame;
    if ((word & kControlBit) != 0) {
      const uint32_t version = (word >> 16) & 0x7fff;
      const auto type = static_cast<uint16_t>(word);
      if (version != kVersion) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "control frame of SPDY version ", version, "; only version ", kVersion, " is spoken")));
      }
      const char* name = TypeName(type);
      if (name == nullptr || type == static_cast<uint16_t>(FrameType::kData)) {
        // Section 2.2.1: unknown control frames are ignored. They carry no
        // header block, so the zlib stream is not affected.
        pos_ += kFrameHeaderBytes;
        skip_ = length;
        continue;
      }
      if (length > limits_.max_control_payload) {
        return Fail(absl::ResourceExhaustedError(absl::StrCat(name, " frame of ", length,
                                                              " bytes is over the limit of ",
                                                              limits_.max_control_payload)));
      }
      const LengthRule rule = ControlLength(static_cast<FrameType>(type));
      if (length < rule.min || (rule.exact && length != rule.min)) {
        return Fail(
            absl::InvalidArgumentError(absl::StrCat(name, " frame of ", length, " bytes; it takes ",
                                                    rule.exact ? "" : "at least ", rule.min)));
      }
      if (buffered() < kFrameHeaderBytes + length) return std::nullopt;
      absl::StatusOr<Frame> parsed =
          ParseControl(type, flags, absl::string_view(head + kFrameHeaderBytes, length));
      if (!parsed.ok()) return Fail(parsed.status());
      frame = std::move(*parsed);
    } else {
      const uint32_t stream_id = word & kStreamIdMask;
      if (stream_id == 0) {
        return Fail(absl::InvalidArgumentError("data frame for stream 0"));
      }
      if (length > limits_.max_data_payload) {
        return Fail(absl::ResourceExhaustedError(
            absl::StrCat("data frame of ", length, " bytes for stream ", stream_id,
                         " is over the limit of ", limits_.max_data_payload)));
      }
      if (buffered() < kFrameHeaderBytes + length) return std::nullopt;
      frame.emplace();
      frame->type = FrameType::kData;
      frame->flags = flags;
      frame->stream_id = stream_id;
      frame->data.assign(head + kFrameHeaderBytes, length);
    }
    pos_ += kFrameHeaderBytes + length;
    if (pos_ == buffer_.size()) {
      // Drop the memory of a large frame once it is delivered.
      if (buffer_.capacity() > kInflateChunk) {
        buffer_ = std::string();
      } else {
        buffer_.clear();
      }
      pos_ = 0;
    }
    return frame;
  }
}

absl::StatusOr<Frame> Decoder::ParseControl(uint16_t type, uint8_t flags,
                                            absl::string_view payload) {
  Frame f;
  f.type = static_cast<FrameType>(type);
  f.flags = flags;
  const char* p = payload.data();
  const char* name = TypeName(type);
  auto stream_id_not_zero = [&]() -> absl::Status {
    if (f.stream_id != 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(name, " frame for stream 0"));
  };
  absl::string_view block;
  switch (f.type) {
    case FrameType::kSynStream:
      f.stream_id = LoadU32(p) & kStreamIdMask;
      f.associated_stream_id = LoadU32(p + 4) & kStreamIdMask;
      f.priority = static_cast<uint8_t>(static_cast<unsigned char>(p[8]) >> 5);
      // p[9]: the CREDENTIAL slot of SPDY/3, unused since SPDY/3.1.
      block = payload.substr(10);
      break;
    case FrameType::kSynReply:
    case FrameType::kHeaders:
      f.stream_id = LoadU32(p) & kStreamIdMask;
      block = payload.substr(4);
      break;
    case FrameType::kRstStream:
      f.stream_id = LoadU32(p) & kStreamIdMask;
      f.status = LoadU32(p + 4);
      break;
    case FrameType::kSettings: {
      const uint32_t count = LoadU32(p);
      const size_t room = (payload.size() - 4) / 8;
      if (count != room || (payload.size() - 4) % 8 != 0) {
        return absl::InvalidArgumentError(absl::StrCat("SETTINGS frame of ", payload.size(),
                                                       " bytes claims ", count, " entries"));
      }
      f.settings.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        const char* e = p + 4 + size_t{8} * i;
        const uint32_t id = LoadU32(e);
        f.settings.push_back({.flags = static_cast<uint8_t>(id >> 24),
                              .id = id & kSettingsIdMask,
                              .value = LoadU32(e + 4)});
      }
      return f;
    }
    case FrameType::kPing:
      f.ping_id = LoadU32(p);
      return f;
    case FrameType::kGoAway:
      f.last_good_stream_id = LoadU32(p) & kStreamIdMask;
      f.status = LoadU32(p + 4);
      return f;
    case FrameType::kWindowUpdate:
      // Stream 0 is the session's window (SPDY/3.1).
      f.stream_id = LoadU32(p) & kStreamIdMask;
      f.delta_window_size = LoadU32(p + 4) & kStreamIdMask;
      return f;
    case FrameType::kData:
      break;
  }
  if (absl::Status s = stream_id_not_zero(); !s.ok()) return s;
  if (f.type == FrameType::kRstStream) return f;
  absl::StatusOr<HeaderBlock> headers = InflateHeaderBlock(block);
  if (!headers.ok()) {
    return absl::Status(
        headers.status().code(),
        absl::StrCat(name, " frame for stream ", f.stream_id, ": ", headers.status().message()));
  }
  f.headers = *std::move(headers);
  return f;
}

absl::StatusOr<HeaderBlock> Decoder::InflateHeaderBlock(absl::string_view compressed) {
  if (inflater_ == nullptr) {
    auto inflater = std::make_unique<Inflater>();
    if (inflateInit(&inflater->zs) != Z_OK) {
      return absl::ResourceExhaustedError("inflateInit failed");
    }
    inflater_ = std::move(inflater);
  }
  z_stream& zs = inflater_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  // (Clamped so that limit + 1 below cannot wrap.)
  const size_t limit = std::min(limits_.max_header_block, std::numeric_limits<size_t>::max() - 1);
  std::string block;
  for (;;) {
    // Room for one byte over the limit, to tell "at the limit" from "over".
    const size_t old_size = block.size();
    const size_t room = std::min(kInflateChunk, limit + 1 - old_size);
    block.resize(old_size + room);
    zs.next_out = reinterpret_cast<Bytef*>(block.data() + old_size);
    zs.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    block.resize(old_size + room - zs.avail_out);
    if (rc == Z_NEED_DICT) {
      rc = inflateSetDictionary(&zs, kDictionary.data(), kDictionary.size());
      if (rc != Z_OK) {
        return absl::InvalidArgumentError(
            "header block is not compressed with the SPDY/3 dictionary");
      }
      continue;
    }
    if (rc == Z_STREAM_END) {
      return absl::InvalidArgumentError(
          "header block ends its zlib stream (SPDY keeps one stream per connection)");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::InvalidArgumentError(absl::StrCat("header block does not inflate: ",
                                                     zs.msg != nullptr ? zs.msg : "zlib error"));
    }
    if (block.size() > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("header block inflates to more than ", limit, " bytes"));
    }
    // Done when all input is read and inflate stopped with room to spare.
    if (zs.avail_out != 0) {
      if (zs.avail_in == 0) break;
      return absl::InvalidArgumentError("header block does not inflate: zlib made no progress");
    }
  }
  return ParseHeaderBlock(block);
}

// ---------------------------------------------------------------------------
// Encoder

struct Encoder::Deflater {
  z_stream zs{};
  absl::Status broken;  // a failure that left the zlib stream unusable
  ~Deflater() { deflateEnd(&zs); }
};

Encoder::Encoder() = default;
Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

absl::Status Encoder::HeaderFrame(FrameType type, uint8_t flags, absl::string_view fixed,
                                  const HeaderBlock& headers, std::string& out) {
  const char* name = TypeName(static_cast<uint16_t>(type));
  // Validate and size the block before the zlib stream moves.
  if (headers.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": too many headers"));
  }
  uint64_t size = 4;
  std::vector<std::string> names;
  names.reserve(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) {
    const auto& [key, value] = headers[i];
    names.push_back(absl::AsciiStrToLower(key));
    if (absl::Status s = CheckHeaderName(names.back(), i); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
    }
    size += 8 + uint64_t{key.size()} + value.size();
  }
  if (size > kMaxHeaderBlock) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": header block of ", size, " bytes is over the limit of ", kMaxHeaderBlock));
  }
  std::vector<absl::string_view> sorted(names.begin(), names.end());
  if (absl::Status s = CheckNoDuplicates(sorted); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
  }
  std::string block;
  block.reserve(size);
  AppendU32(block, static_cast<uint32_t>(headers.size()));
  for (size_t i = 0; i < headers.size(); ++i) {
    AppendU32(block, static_cast<uint32_t>(names[i].size()));
    block.append(names[i]);
    AppendU32(block, static_cast<uint32_t>(headers[i].second.size()));
    block.append(headers[i].second);
  }

  if (deflater_ == nullptr) {
    auto deflater = std::make_unique<Deflater>();
    if (deflateInit(&deflater->zs, Z_DEFAULT_COMPRESSION) != Z_OK) {
      return absl::ResourceExhaustedError("deflateInit failed");
    }
    if (deflateSetDictionary(&deflater->zs, kDictionary.data(), kDictionary.size()) != Z_OK) {
      return absl::InternalError("deflateSetDictionary failed");
    }
    deflater_ = std::move(deflater);
  }
  if (!deflater_->broken.ok()) return deflater_->broken;
  z_stream& zs = deflater_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(block.data());
  zs.avail_in = static_cast<uInt>(block.size());
  std::string frame;
  AppendControlHeader(frame, type, flags, 0);  // length filled in below
  frame.append(fixed.data(), fixed.size());
  for (;;) {
    const size_t old_size = frame.size();
    const size_t room = block.size() / 2 + 64;
    frame.resize(old_size + room);
    zs.next_out = reinterpret_cast<Bytef*>(frame.data() + old_size);
    zs.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&zs, Z_SYNC_FLUSH);
    frame.resize(old_size + room - zs.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      deflater_->broken = absl::InternalError(absl::StrCat("deflate failed: ", rc));
      return deflater_->broken;
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) break;
  }
  const size_t length = frame.size() - kFrameHeaderBytes;
  if (length > kMaxFrameLength) {  // cannot happen below kMaxHeaderBlock
    deflater_->broken =
        absl::InternalError(absl::StrCat(name, " frame of ", length, " bytes after deflate"));
    return deflater_->broken;
  }
  frame[5] = static_cast<char>(length >> 16);
  frame[6] = static_cast<char>(length >> 8);
  frame[7] = static_cast<char>(length);
  out.append(frame);
  return absl::OkStatus();
}

absl::Status Encoder::SynStream(uint32_t stream_id, uint32_t associated_stream_id, uint8_t priority,
                                uint8_t flags, const HeaderBlock& headers, std::string& out) {
  if (absl::Status s = CheckStreamId(stream_id, false, "SYN_STREAM"); !s.ok()) return s;
  if (absl::Status s = CheckStreamId(associated_stream_id, true, "SYN_STREAM associated");
      !s.ok()) {
    return s;
  }
  if (priority > 7) {
    return absl::InvalidArgumentError(
        absl::StrCat("SYN_STREAM priority ", priority, " is not in [0, 7]"));
  }
  if (absl::Status s = CheckFlags(flags, kFlagFin | kFlagUnidirectional, "SYN_STREAM"); !s.ok()) {
    return s;
  }
  std::string fixed;
  AppendU32(fixed, stream_id);
  AppendU32(fixed, associated_stream_id);
  fixed.push_back(static_cast<char>(priority << 5));
  fixed.push_back('\0');  // slot
  return HeaderFrame(FrameType::kSynStream, flags, fixed, headers, out);
}

absl::Status Encoder::SynReply(uint32_t stream_id, uint8_t flags, const HeaderBlock& headers,
                               std::string& out) {
  if (absl::Status s = CheckStreamId(stream_id, false, "SYN_REPLY"); !s.ok()) return s;
  if (absl::Status s = CheckFlags(flags, kFlagFin, "SYN_REPLY"); !s.ok()) return s;
  std::string fixed;
  AppendU32(fixed, stream_id);
  return HeaderFrame(FrameType::kSynReply, flags, fixed, headers, out);
}

absl::Status Encoder::Headers(uint32_t stream_id, uint8_t flags, const HeaderBlock& headers,
                              std::string& out) {
  if (absl::Status s = CheckStreamId(stream_id, false, "HEADERS"); !s.ok()) return s;
  if (absl::Status s = CheckFlags(flags, kFlagFin, "HEADERS"); !s.ok()) return s;
  std::string fixed;
  AppendU32(fixed, stream_id);
  return HeaderFrame(FrameType::kHeaders, flags, fixed, headers, out);
}

absl::Status Encoder::RstStream(uint32_t stream_id, uint32_t status, std::string& out) {
  if (absl::Status s = CheckStreamId(stream_id, false, "RST_STREAM"); !s.ok()) return s;
  if (status == 0) return absl::InvalidArgumentError("RST_STREAM status 0 is not valid");
  AppendControlHeader(out, FrameType::kRstStream, 0, 8);
  AppendU32(out, stream_id);
  AppendU32(out, status);
  return absl::OkStatus();
}

absl::Status Encoder::Settings(uint8_t flags, const std::vector<SettingsEntry>& entries,
                               std::string& out) {
  if (absl::Status s = CheckFlags(flags, kFlagSettingsClearSettings, "SETTINGS"); !s.ok()) {
    return s;
  }
  if (entries.size() > (kMaxFrameLength - 4) / 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("SETTINGS with ", entries.size(), " entries does not fit a frame"));
  }
  for (const SettingsEntry& e : entries) {
    if (e.id > kSettingsIdMask) {
      return absl::InvalidArgumentError(absl::StrCat("SETTINGS id ", e.id, " is over 24 bits"));
    }
  }
  AppendControlHeader(out, FrameType::kSettings, flags,
                      static_cast<uint32_t>(4 + 8 * entries.size()));
  AppendU32(out, static_cast<uint32_t>(entries.size()));
  for (const SettingsEntry& e : entries) {
    AppendU32(out, (uint32_t{e.flags} << 24) | e.id);
    AppendU32(out, e.value);
  }
  return absl::OkStatus();
}

absl::Status Encoder::Ping(uint32_t id, std::string& out) {
  AppendControlHeader(out, FrameType::kPing, 0, 4);
  AppendU32(out, id);
  return absl::OkStatus();
}

absl::Status Encoder::GoAway(uint32_t last_good_stream_id, uint32_t status, std::string& out) {
  if (absl::Status s = CheckStreamId(last_good_stream_id, true, "GOAWAY last good"); !s.ok()) {
    return s;
  }
  AppendControlHeader(out, FrameType::kGoAway, 0, 8);
  AppendU32(out, last_good_stream_id);
  AppendU32(out, status);
  return absl::OkStatus();
}

absl::Status Encoder::WindowUpdate(uint32_t stream_id, uint32_t delta_window_size,
                                   std::string& out) {
  if (absl::Status s = CheckStreamId(stream_id, true, "WINDOW_UPDATE"); !s.ok()) return s;
  if (delta_window_size == 0 || delta_window_size > kMaxStreamId) {
    return absl::InvalidArgumentError(
        absl::StrCat("WINDOW_UPDATE delta ", delta_window_size, " is not in [1, 2^31-1]"));
  }
  AppendControlHeader(out, FrameType::kWindowUpdate, 0, 8);
  AppendU32(out, stream_id);
  AppendU32(out, delta_window_size);
  return absl::OkStatus();
}

absl::Status Encoder::Data(uint32_t stream_id, absl::string_view payload, bool fin,
                           std::string& out) {
  if (absl::Status s = CheckStreamId(stream_id, false, "data frame"); !s.ok()) return s;
  if (payload.size() > kMaxFrameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("data frame payload of ", payload.size(), " bytes is over 2^24-1; split it"));
  }
  AppendU32(out, stream_id);
  AppendU32(out,
            (uint32_t{fin ? kFlagFin : uint8_t{0}} << 24) | static_cast<uint32_t>(payload.size()));
  out.append(payload.data(), payload.size());
  return absl::OkStatus();
}

absl::Status Encoder::Encode(const Frame& frame, std::string& out) {
  switch (frame.type) {
    case FrameType::kData:
      if (absl::Status s = CheckFlags(frame.flags, kFlagFin, "data frame"); !s.ok()) return s;
      return Data(frame.stream_id, frame.data, frame.fin(), out);
    case FrameType::kSynStream:
      return SynStream(frame.stream_id, frame.associated_stream_id, frame.priority, frame.flags,
                       frame.headers, out);
    case FrameType::kSynReply:
      return SynReply(frame.stream_id, frame.flags, frame.headers, out);
    case FrameType::kRstStream:
      return RstStream(frame.stream_id, frame.status, out);
    case FrameType::kSettings:
      return Settings(frame.flags, frame.settings, out);
    case FrameType::kPing:
      return Ping(frame.ping_id, out);
    case FrameType::kGoAway:
      return GoAway(frame.last_good_stream_id, frame.status, out);
    case FrameType::kHeaders:
      return Headers(frame.stream_id, frame.flags, frame.headers, out);
    case FrameType::kWindowUpdate:
      return WindowUpdate(frame.stream_id, frame.delta_window_size, out);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown frame type ", static_cast<uint16_t>(frame.type)));
}

}  // namespace podshim::streaming::spdy
