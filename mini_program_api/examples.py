"""An example of every request body, as the mini-program sends it, for the API description.
tests/api/test_openapi.py decodes each into its body type, so an example cannot drift from it."""

from __future__ import annotations

from typing import Any

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "LoginInput": {"code": "0a3Xb2ll2H7Zbe4Yq3ol2yNQvN0Xb2lj"},
    "RefreshInput": {"refreshToken": "k2V4c1ZqRUJ6b3h4bGQ5c1pQS3J2YjFzU0x3R0ZHc2M"},
    "BindStaffInput": {"code": "K7M2QX9PRA"},
    "ConsoleSignInInput": {"code": "Wm1Xq3n8Rz0pY7sVb2KdLc4TfGh9JeUoNa5iPx6Q0Ek"},
    "OrderSearchInput": {
        "by": "id_number",
        "value": "370406194803120028",
        "purpose": "群众来电查询办理进度",
    },
    "CloseAccountInput": {"confirm": "注销"},
    "PhoneCodeInput": {"code": "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"},
    "ProfileInput": {"name": "张秀英", "villageId": 3, "idNumber": "370406194803150228"},
    "StaffInput": {
        "role": "agent",
        "name": "刘桂兰",
        "regionId": 3,
        "post": "A",
        "workPhone": "0632-8123456",
        "serviceHours": "周一至周五 8:30-17:00",
    },
    "StaffChangeInput": {"serviceHours": "周一至周六 8:30-17:00", "post": "B"},
    "StaffPhotoInput": {"uploadId": 1201},
    "RegionInput": {"code": "370406103001", "name": "山城社区"},
    "RegionRenameInput": {"name": "山城东社区"},
    "UploadInput": {"purpose": "material", "contentType": "image/jpeg", "size": 2480133},
    "SubmitOrderInput": {
        "itemCode": "RS-0001",
        "materials": {"id_card": [1201], "hukou": [1202]},
        "note": "白天在家,下午三点后方便接电话",
        "greenChannel": True,
    },
    "EnteredOrderInput": {
        "itemCode": "RS-0001",
        "materials": {"id_card": [1201], "hukou": [1202]},
        "resident": {"name": "王德顺", "idNumber": "370406194105170019", "phone": "13806321234"},
        "entrustmentUploadIds": [1203],
        "homeVisit": True,
    },
    "MoveInput": {"reason": "已电话告知群众"},
    "ReasonInput": {"reason": "户口簿与身份证地址不一致,须先办理地址变更"},
    "AssignInput": {"agentId": 12},
    "SupplementRequestInput": {
        "missing": [
            {"code": "id_card", "reason": "身份证背面照片反光,看不清有效期"},
            {"code": "hukou", "reason": "缺户口簿本人页"},
        ]
    },
    "SupplementInput": {"materials": {"id_card": [1210], "hukou": [1211]}},
    "CompletionInput": {
        "outcome": "approved",
        "resultUploadIds": [1220],
        "feesCollectedFen": 0,
    },
    "DeliveryInput": {"deliveryMethod": "delivery", "proofUploadIds": [1221]},
    "ReassignInput": {"agentId": 13, "reason": "A岗请假,由B岗代办"},
    "ExplanationInput": {"explanation": "区里系统升级停办两天,已向群众说明"},
    "ProgressInput": {
        "step": "sent",
        "on": "2026-11-25",
        "department": "civil",
        "note": "已报区民政局低保科",
        "receiptUploadIds": [52],
    },
    "GreenChannelInput": {"grant": True, "reason": "群众持残疾证,行动不便"},
    "DutyInput": {"status": "on_leave", "leaveUntil": "2026-12-10", "handOver": True},
    "HandOverInput": {"toAgentId": 13, "reason": "本人请假一周"},
    "TownRuleInput": {"autoDispatch": True},
    "CalendarYearInput": {
        "days": [
            {"day": "2027-01-01", "isWorkday": False, "note": "元旦"},
            {"day": "2027-02-07", "isWorkday": True, "note": "春节调休上班"},
        ],
        "complete": False,
    },
    "MarkReadInput": {"ids": [301, 302]},
    "SubscribeInput": {"templateIds": ["Xk3aPq9Lw2fYt8sZk1mNb7cVd4eRg6hJ"]},
    "RatingInput": {
        "grade": 5,
        "tags": ["办事快", "态度好"],
        "comment": "代办员上门帮我办好了,谢谢",
    },
    "FollowUpInput": {"grade": "satisfied", "comment": "问题已经解决"},
    "ComplaintInput": {"orderId": 88, "text": "代办员电话一直打不通"},
    "StaffComplaintInput": {
        "channel": "phone",
        "idNumber": "370406194105170019",
        "name": "王德顺",
        "orderNumber": "DB20261123000042",
        "text": "来电反映:交了材料三天没人联系",
    },
    "FeedbackInput": {"resolved": True},
    "AppealInput": {"reason": "mistaken", "evidence": "群众误把其他事项的评价填在本件"},
    "DecisionInput": {"upheld": True, "note": "经回访核实为误评"},
    "NoteInput": {"note": "已电话回访群众,情况属实"},
    "CaseAnswerInput": {"kind": "fixed", "answer": "已重新为您办理,并对代办员批评教育"},
    "AnswerInput": {
        "answer": "已联系代办员,明天上午上门办理",
        "answeredVia": "phone",
        "note": "12月5日上午电话告知本人",
    },
    "EnablementInput": {"regionId": 3, "itemCodes": ["RS-0001", "MZ-0003"], "enabled": True},
    "BuildInput": {"month": "2026-11"},
    "CorrectionInput": {"reason": "东庄村10月漏登2件代为委托的办件,补录后重新生成"},
    # The catalogue's own file format (snake_case, as in catalogue.yaml).
    "ItemSpec": {
        "code": "RS-0099",
        "name": "城乡居民养老保险待遇领取资格认证",
        "department": "hrss",
        "level": "town",
        "kind": "immediate",
        "mode": "full",
        "conditions": "本区城乡居民养老保险待遇领取人员",
        "materials": [{"code": "id_card", "name": "居民身份证", "form": "original"}],
        "steps": ["受理", "认证", "办结"],
        "promised_days": 0,
        "legal_days": 0,
        "legal_basis": "《城乡居民基本养老保险经办规程》",
        "phone": "0632-8123456",
        "enabled": ["town", "village"],
    },
}
