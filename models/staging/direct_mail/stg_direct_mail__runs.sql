with

source as (

    select * from {{ source('direct_mail', 'runs') }}

),

renamed as (

    select
        run_id,
        campaign,
        run_time,
        status,
        started_at,
        finished_at,
        targeted,
        exported,
        holdout,
        duplicates_removed,
        coalesce(seed_rows, 0) as seed_rows,
        configuration,
        attempt

    from source

)

select * from renamed
