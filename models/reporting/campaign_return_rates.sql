{#-
    Return rates: per campaign and delivered run, the pieces mailed, the pieces the mail house sent
    back, their share and the count per reason. A return is matched to the latest run that mailed its
    identity on or before the day of returned_at (return files give days); an identity returned for
    several reasons counts once per run, under the gravest (deceased, refused, moved, undeliverable), as
    the runner's suppression does.
-#}
with

runs as (

    select * from {{ ref('stg_direct_mail__runs') }}
    where status = 'delivered'

),

sends as (

    select * from {{ ref('stg_direct_mail__sends') }}
    where is_mailed

),

returns as (

    select * from {{ ref('stg_direct_mail__returns') }}

),

pieces_per_run as (

    select
        run_id,
        count(*) as pieces_mailed

    from sends
    group by run_id

),

matched as (

    select
        returns.identity,
        returns.reason,
        returns.returned_at,
        sends.run_id,
        row_number() over (
            partition by returns.identity, returns.reason, returns.returned_at
            order by sends.sent_at desc, sends.run_id desc
        ) as send_rank

    from returns
    inner join sends
        on
            returns.identity = sends.profile_id
            -- by day: a mail house dates a return, often without a time of day
            and cast(returns.returned_at as date) >= cast(sends.sent_at as date)

),

graded as (

    select
        run_id,
        identity,
        min(
            case reason
                when 'deceased' then 1
                when 'refused' then 2
                when 'moved' then 3
                when 'undeliverable' then 4
            end
        ) as gravest

    from matched
    where send_rank = 1
    group by run_id, identity

),

returned_per_run as (

    select
        run_id,
        count(*) as returned_pieces,
        sum(case when gravest = 4 then 1 else 0 end) as undeliverable,
        sum(case when gravest = 3 then 1 else 0 end) as moved,
        sum(case when gravest = 1 then 1 else 0 end) as deceased,
        sum(case when gravest = 2 then 1 else 0 end) as refused

    from graded
    group by run_id

),

reported as (

    select
        runs.campaign,
        runs.run_id,
        runs.run_time,
        coalesce(pieces_per_run.pieces_mailed, 0) as pieces_mailed,
        coalesce(returned_per_run.returned_pieces, 0) as returned_pieces,
        {{ round_to(
            '100.0 * coalesce(returned_per_run.returned_pieces, 0) / nullif(pieces_per_run.pieces_mailed, 0)',
            2
        ) }} as return_rate_percent,
        coalesce(returned_per_run.undeliverable, 0) as undeliverable,
        coalesce(returned_per_run.moved, 0) as moved,
        coalesce(returned_per_run.deceased, 0) as deceased,
        coalesce(returned_per_run.refused, 0) as refused

    from runs
    left join pieces_per_run
        on runs.run_id = pieces_per_run.run_id
    left join returned_per_run
        on runs.run_id = returned_per_run.run_id

)

select * from reported
