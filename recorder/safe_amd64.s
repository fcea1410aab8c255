//go:build amd64 && !purego

#include "textflag.h"

// func unsafeMasksAVX2(p []byte, masks []uint32) int
//
// For each whole 32-byte block k of p, while k < len(masks), sets masks[k]
// to a bit mask of the block's bytes that jsonSafe rejects (bit b for byte
// 32k+b), and returns the number of blocks done. One signed compare finds
// both the controls (0x00-0x1f) and the bytes of 0x80 and up: as signed
// bytes, exactly those are less than 0x20. The two others find '"' and '\'.
TEXT ·unsafeMasksAVX2(SB), NOSPLIT, $0-56
	MOVQ p_base+0(FP), SI
	MOVQ p_len+8(FP), CX
	MOVQ masks_base+24(FP), DI
	MOVQ masks_len+32(FP), BX
	SHRQ $5, CX
	CMPQ CX, BX
	CMOVQHI BX, CX // blocks = min(len(p)/32, len(masks))
	XORQ AX, AX
	MOVL $0x20, DX
	MOVQ DX, X1
	VPBROADCASTB X1, Y1
	MOVL $0x22, DX
	MOVQ DX, X2
	VPBROADCASTB X2, Y2
	MOVL $0x5c, DX
	MOVQ DX, X3
	VPBROADCASTB X3, Y3

loop:
	CMPQ AX, CX
	JAE  done
	VMOVDQU   (SI), Y0
	VPCMPGTB  Y0, Y1, Y4 // 0x20 > byte, signed: a control or 0x80 and up
	VPCMPEQB  Y0, Y2, Y5 // '"'
	VPCMPEQB  Y0, Y3, Y6 // '\\'
	VPOR      Y5, Y4, Y4
	VPOR      Y6, Y4, Y4
	VPMOVMSKB Y4, DX
	MOVL      DX, (DI)(AX*4)
	ADDQ      $32, SI
	INCQ      AX
	JMP       loop

done:
	VZEROUPPER
	MOVQ AX, ret+48(FP)
	RET
